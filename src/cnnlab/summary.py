"""What a run prints at the end: its test accuracy, its run dir and how to look at it; and clean errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from cnnlab.errors import CnnlabError


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def short_path(path: str | Path) -> str:
    """Relative to the current directory when inside it: shorter to read and to copy."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def print_summary(results: dict[str, Any], hints: list[tuple[str, str]]) -> None:
    """Plain `label  value` lines: long paths must stay whole to be copied."""
    run_dir = short_path(results["run_dir"])
    lines = []
    acc = results.get("test/acc")
    if acc is not None:
        on = f" on {escape(results['dataset'])}" if results.get("dataset") else ""
        lines.append(("test accuracy", f"[bold green]{100 * acc:.2f} %[/]  ({results['model']}{on}, "
                                       f"{results['epochs']} epoch(s), {results['wall_time_s']:.0f} s)"))
    lines.append(("run dir", escape(run_dir)))
    lines += [(label, escape(command.replace(str(results["run_dir"]), run_dir))) for label, command in hints]
    console = Console(soft_wrap=True)
    console.print("[bold]cnnlab run finished[/]", highlight=False)
    for label, value in lines:
        console.print(f"  [cyan]{label:<14}[/]{value}", highlight=False)


def print_error(err: Exception, output_dir: Path | None = None) -> None:
    """One paragraph on stderr, and the same in <run dir>/error.txt so a sweep keeps it."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]cnnlab: error:[/] {escape(str(err))}", highlight=False,
                                               markup=True)
    if output_dir is not None and output_dir.exists():
        (output_dir / "error.txt").write_text(f"{err}\n")


def fail(err: CnnlabError, output_dir: Path | None = None) -> int:
    """The one error path of every command (cnnlab-train, -models, -cka, -report): the paragraph on stderr (and
    in <run dir>/error.txt), then the exit status the command ends with (the error's own: 2, or 143 if stopped)."""
    print_error(err, output_dir)
    return err.exit_code

"""A Hydra callback that closes every multirun with one table of its jobs, and a failing exit code if any
job failed. It reads the job dirs, so it works the same with every launcher (basic, joblib, submitit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnlab.summary import short_path


def read_jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job dir: its overrides, and its results or its error."""
    jobs = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        row: dict[str, Any] = {"job": int(job_dir.name), "dir": job_dir, "overrides": " ".join(overrides or [])}
        if (job_dir / "results.json").exists():
            row["results"] = json.loads((job_dir / "results.json").read_text())
        elif (job_dir / "error.txt").exists():
            row["error"] = (job_dir / "error.txt").read_text().strip()
        else:
            row["error"] = f"no results: the job stopped early (see {job_dir / 'train.log'})"
        jobs.append(row)
    return jobs


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        jobs = read_jobs(sweep_dir)
        table = Table(title=f"cnnlab sweep finished: {short_path(sweep_dir)}", title_justify="left")
        for column in ("job", "overrides", "test acc", "time", "result"):
            table.add_column(column, overflow="fold")
        for row in jobs:
            results = row.get("results")
            if results:
                acc = results.get("test/acc")
                table.add_row(str(row["job"]), escape(row["overrides"]), "-" if acc is None else f"{100 * acc:.2f} %",
                              f"{results.get('wall_time_s', 0):.0f} s", "[green]ok[/]")
            else:
                table.add_row(str(row["job"]), escape(row["overrides"]), "-", "-", f"[red]failed:[/] {escape(first_sentence(row['error']))}")
        Console(soft_wrap=False).print(table)
        failed = [row["job"] for row in jobs if "error" in row]
        if failed:
            Console(stderr=True).print(f"[bold red]cnnlab: {len(failed)} of {len(jobs)} job(s) failed:[/] "
                                       f"{', '.join(map(str, failed))} (each job dir has its error.txt)")
            sys.exit(1)

"""A Hydra callback that closes every multirun with one table of its jobs, and a failing exit code if any
job failed. It reads the job dirs, so it works the same with every launcher (basic, joblib, submitit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnlab.reports.runs import read_sweep
from cnnlab.resume import SWEEP_SUMMARY
from cnnlab.summary import first_sentence, short_path


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        runs = read_sweep(sweep_dir)
        table = Table(title=f"cnnlab sweep finished: {short_path(sweep_dir)}", title_justify="left")
        for column in ("job", "overrides", "test acc", "time", "result"):
            table.add_column(column, overflow="fold")
        for run in runs:
            overrides = escape(" ".join(run.overrides))
            if run.ok:
                acc = run.number("test/acc")
                table.add_row(run.name, overrides, "-" if acc is None else f"{100 * acc:.2f} %",
                              f"{run.number('wall_time_s') or 0:.0f} s", "[green]ok[/]")
            else:
                table.add_row(run.name, overrides, "-", "-", f"[red]failed:[/] {escape(first_sentence(run.error))}")
        Console(soft_wrap=False).print(table)
        failed = [run.name for run in runs if not run.ok]
        # The sweep ended: resume=true goes back to it only if some job failed (and then runs just those).
        record = {"jobs": len(runs), "failed": {run.name: run.error for run in runs if not run.ok}}
        (sweep_dir / SWEEP_SUMMARY).write_text(yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
        if failed:
            Console(stderr=True).print(f"[bold red]cnnlab: {len(failed)} of {len(runs)} job(s) failed:[/] "
                                       f"{', '.join(failed)} (each job dir has its error.txt). Run the same "
                                       "command with resume=true to redo only those.", highlight=False)
            sys.exit(1)
        Console().print(f"Report: cnnlab-report {short_path(sweep_dir)}", highlight=False)

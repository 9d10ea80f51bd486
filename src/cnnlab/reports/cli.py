"""`cnnlab-report`: runs side by side, with the plot and the one-line answer of their question.

    cnnlab-report logs/experiments/pooling/2026-11-23_16-38-53      # a sweep: report.md/.html inside it
    cnnlab-report logs/runs/2026-11-23/10-04-12 logs/runs/2026-11-23/11-30-00 --out my_report
    cnnlab-report --experiment pooling    # the newest sweep of experiments/pooling, also into that folder
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.hydra_setup import experiment_names
from cnnlab.paths import EXPERIMENTS_DIR
from cnnlab.summary import fail, short_path


def log_dir() -> Path:
    return Path(os.environ.get("CNNLAB_LOG_DIR", "logs"))


def newest_sweep(name: str) -> Path:
    if name not in experiment_names():
        raise CnnlabError(f"Unknown experiment '{name}'. Valid experiments: {', '.join(experiment_names())} "
                          f"(each is a folder of {short_path(EXPERIMENTS_DIR)} with a config.yaml).")
    sweeps = sorted(p for p in (log_dir() / "experiments" / name).glob("*") if p.is_dir())
    if not sweeps:
        raise CnnlabError(f"Experiment '{name}' has no sweep under {log_dir() / 'experiments' / name} yet. Run it "
                          f"first: make experiment NAME={name} (or cnnlab-train -m experiment={name}).")
    return sweeps[-1]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cnnlab-report", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("paths", nargs="*", help="run dirs and/or sweep dirs")
    parser.add_argument("--experiment", metavar="NAME", help="report the newest sweep of experiments/NAME and "
                        "copy the report into experiments/NAME/")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep or run dir when there is "
                        "one path, else logs/reports/<time>)")
    parser.add_argument("--title", help="the report's title")
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.experiment):
        parser.error("give run/sweep dirs, or --experiment NAME (one of the two)")
    return args


def show(report, paths: dict[str, Path]) -> None:
    console = Console(soft_wrap=True)
    table = Table(title=report.title, title_justify="left")
    for column in report.header:
        table.add_column(escape(column), overflow="fold")
    for row in report.rows:
        style = "red" if row[report.header.index("result")] == "failed" else None
        table.add_row(*(escape(cell) for cell in row), style=style)
    console.print(table)
    console.print(f"[bold]Answer:[/] {escape(report.finding.sentence)}", highlight=False)
    for kind, path in paths.items():
        console.print(f"  [cyan]{kind:<8}[/]{escape(short_path(path))}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    from cnnlab.noise import quiet_known_noise
    from cnnlab.reports.render import build, write
    from cnnlab.reports.runs import find_runs

    quiet_known_noise()
    args = parse(argv)
    try:
        paths = [newest_sweep(args.experiment)] if args.experiment else [Path(p) for p in args.paths]
        runs = find_runs(paths)
        out = args.out or (paths[0] if len(paths) == 1 else log_dir() / "reports" / time.strftime("%Y-%m-%d_%H-%M-%S"))
        report = build(runs, args.title)
        written = write(report, runs, out)
        if args.experiment:  # the committed answer next to the experiment's config
            target = EXPERIMENTS_DIR / args.experiment
            for name in ("report.md", "report.html", "runs.csv"):
                shutil.copy(out / name, target / name)
            shutil.copytree(out / "figures", target / "figures", dirs_exist_ok=True)
            written["copied"] = target / "report.md"
    except CnnlabError as err:
        return fail(err)
    show(report, written)
    return 0

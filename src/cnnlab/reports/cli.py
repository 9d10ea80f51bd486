"""`cnnlab-report`: runs side by side, with the plot and the one-line answer of their question.

    cnnlab-report logs/experiments/pooling/mnist/2026-12-02_12-27-43    # a sweep: report.md/.html inside it
    cnnlab-report logs/runs/2026-11-23/10-04-12 logs/runs/2026-11-23/11-30-00 --out my_report
    cnnlab-report --experiment pooling        # its MNIST sweeps as one, also copied into experiments/pooling/mnist/
    cnnlab-report --experiment pooling --data cifar10_jpeg     # the same for its CIFAR-10 sweeps
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


def experiment_sweeps(name: str, data: str) -> list[Path]:
    """Every sweep of experiments/NAME on DATA, oldest first (the report merges them: merge_sweeps)."""
    if name not in experiment_names():
        raise CnnlabError(f"Unknown experiment '{name}'. Valid experiments: {', '.join(experiment_names())} "
                          f"(each is a folder of {short_path(EXPERIMENTS_DIR)} with a config.yaml).")
    where = log_dir() / "experiments" / name / data
    sweeps = sorted(p for p in where.glob("*") if p.is_dir())
    if not sweeps:
        ran = ", ".join(sorted(p.name for p in where.parent.glob("*") if p.is_dir()))
        raise CnnlabError(f"Experiment '{name}' has no sweep on data={data} under {where} yet"
                          f"{f' (it has sweeps on: {ran})' if ran else ''}. Run it first: make experiment "
                          f"NAME={name} DATA={data} (or cnnlab-train -m experiment={name} data={data}).")
    return sweeps


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cnnlab-report", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("paths", nargs="*", help="run dirs and/or sweep dirs")
    parser.add_argument("--experiment", metavar="NAME", help="report every sweep of experiments/NAME on --data "
                        "as one (a later run of a setting and seed replaces an earlier one; extra seeds join) and copy "
                        "the report into experiments/NAME/DATA/")
    parser.add_argument("--data", default="mnist", help="with --experiment: the data option its sweep ran on "
                        "(default mnist; e.g. cifar10_jpeg); the report goes to experiments/NAME/DATA/")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep or run dir when there is "
                        "one path, else logs/reports/<time>)")
    parser.add_argument("--title", help="the report's title")
    parser.add_argument("--panel", nargs="+", metavar="KEY", default=None, help="pictures to show side by side, "
                        "one per setting: picture keys such as examples/block2 or activations/block1, and "
                        "filters/first for the first layer's filters (default: filters/first examples/block3 "
                        "attribution/methods; 'none' for no panel). A run without one gets it drawn from its "
                        "checkpoint (filters, examples, attribution), once")
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.experiment):
        parser.error("give run/sweep dirs, or --experiment NAME (one of the two)")
    return args


def show(report, paths: dict[str, Path]) -> None:
    from cnnlab.reports.render import summary_title

    console = Console(soft_wrap=True)
    table = Table(title=report.title, title_justify="left")
    for column in report.header:
        table.add_column(escape(column), overflow="fold")
    for row in report.rows:
        style = "red" if row[report.header.index("result")] == "failed" else None
        table.add_row(*(escape(cell) for cell in row), style=style)
    console.print(table)
    if report.summary_rows:
        summary = Table(title=summary_title(report), title_justify="left")
        for column in report.summary_header:
            summary.add_column(escape(column), overflow="fold")
        for row in report.summary_rows:
            summary.add_row(*(escape(cell) for cell in row))
        console.print(summary)
    console.print(f"[bold]Answer:[/] {escape(report.finding.sentence)}", highlight=False)
    for kind, path in paths.items():
        console.print(f"  [cyan]{kind:<8}[/]{escape(short_path(path))}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    from cnnlab.noise import quiet_known_noise
    from cnnlab.reports.panel import DEFAULT_PANEL
    from cnnlab.reports.papers import refresh
    from cnnlab.reports.render import PAPERS_FILE, build, write
    from cnnlab.reports.runs import find_runs, merge_sweeps

    quiet_known_noise()
    args = parse(argv)
    try:
        notes: list[str] = []
        if args.experiment:
            paths = experiment_sweeps(args.experiment, args.data)
            runs, notes = merge_sweeps(paths)
            paths = paths[-1:]  # the report goes into the newest sweep
        else:
            paths = [Path(p) for p in args.paths]
            runs = find_runs(paths)
        out = args.out or (paths[0] if len(paths) == 1 else log_dir() / "reports" / time.strftime("%Y-%m-%d_%H-%M-%S"))
        report = build(runs, args.title)
        panel = [] if args.panel == ["none"] else args.panel or DEFAULT_PANEL
        written = write(report, runs, out, panel, Console(stderr=True))
        if args.experiment:  # the committed answer next to the experiment's config
            target = EXPERIMENTS_DIR / args.experiment / args.data
            target.mkdir(exist_ok=True)
            for name in ("report.md", "report.html", "runs.csv", PAPERS_FILE):
                if (out / name).exists():
                    shutil.copy(out / name, target / name)
                elif (target / name).exists():
                    (target / name).unlink()  # from an earlier report: no longer true
            shutil.copytree(out / "figures", target / "figures", dirs_exist_ok=True)
            written["copied"] = target / "report.md"
            if refresh(EXPERIMENTS_DIR / "README.md"):
                written["papers"] = EXPERIMENTS_DIR / "README.md"
    except CnnlabError as err:
        return fail(err)
    show(report, written)
    for note in notes:
        Console(stderr=True).print(f"[yellow]left out[/] {escape(note)}", highlight=False)
    return 0

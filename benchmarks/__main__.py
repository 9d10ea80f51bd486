"""`make bench` (python -m benchmarks): every ratio measured side by side in one run, printed as a table and
written to benchmarks/results/<machine>.json and .md (the README quotes the .md)."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import data_path, logging_cost, overhead, sweep
from benchmarks.common import DEVICE, Ratio, machine

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS, TARGET_ACC = 60.0, 0.99
ALL = ("overhead", "data", "logging", "sweep")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--pairs", type=int, default=None, help="repeat each A/B pair this many times")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"--only {','.join(unknown)}: not a benchmark; valid: {','.join(ALL)}")
    console = Console(width=max(Console().width, 150))
    say = lambda text: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")  # noqa: E731
    say(f"cnnlab bench on {machine()}")
    ratios: list[Ratio] = []
    extra: dict = {}
    started = time.perf_counter()
    pairs = {"pairs": args.pairs} if args.pairs else {}
    if "overhead" in chosen:
        say("overhead: cnnlab-train (logger=none callbacks=base) vs a plain PyTorch loop, one epoch each, paired")
        ratios.append(overhead.measure(overhead.FRAMEWORK, **pairs))
    if "data" in chosen:
        say("data: tensor-resident vs DataLoader batches")
        ratios.append(data_path.measure([], **pairs))
    if "logging" in chosen:
        result = logging_cost.measure([], **pairs, progress=say)
        ratios += [result.logging, result.pictures_probes]
        runs = result.default_runs
        extra["lenet5"] = {"wall_s": [round(r.seconds, 1) for r in runs], "test_acc": [r.test_acc for r in runs],
                           "met": all(r.seconds <= TARGET_SECONDS and r.test_acc >= TARGET_ACC for r in runs)}
    if "sweep" in chosen:
        say("sweep: 4 one-epoch default runs, parallel launcher vs one by one")
        ratios.append(sweep.measure(["trainer.max_epochs=1"]))
    extra["bench_seconds"] = round(time.perf_counter() - started)
    console.print(table(ratios, extra))
    write(ratios, extra)
    return 0


COLUMNS = ("measure", "A / B", "A (median)", "B (median)", "ratio", "target")


def rows(ratios: list[Ratio], extra: dict) -> list[tuple[str, ...]]:
    """One row per measure, for the terminal table and the README's markdown alike."""
    def mark(met: bool | None) -> str:
        return "" if met is None else (" ✓" if met else " ✗")

    out = [(r.name, r.meaning, f"{statistics.median(r.a):.4g} {r.unit}", f"{statistics.median(r.b):.4g} {r.unit}",
            f"{r.value:.3f}", f"{r.target}{mark(r.met())}") for r in ratios]
    if "lenet5" in extra:
        lenet = extra["lenet5"]
        out.append(("LeNet-5", "default `cnnlab-train`, whole command", f"{statistics.median(lenet['wall_s']):.1f} s",
                    f"{100 * min(lenet['test_acc']):.2f} % test (lowest)", "",
                    f"≥ 99.0 % in ≤ 60 s{mark(lenet['met'])}"))
    return out


def table(ratios: list[Ratio], extra: dict) -> Table:
    t = Table(title=f"cnnlab bench: {machine()}")
    for column in COLUMNS:
        t.add_column(column)
    for row in rows(ratios, extra):
        t.add_row(*row)
    return t


def write(ratios: list[Ratio], extra: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{DEVICE}-{machine()}".lower()).strip("-")[:60]
    record = {"machine": machine(), "device": DEVICE, "date": time.strftime("%Y-%m-%d"),
              "ratios": [r.as_dict() for r in ratios], **extra}
    (RESULTS / f"{slug}.json").write_text(json.dumps(record, indent=2))
    lines = [f"Measured by `make bench` on {machine()}, {record['date']} ({extra['bench_seconds']} s):", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(ratios, extra)]
    (RESULTS / f"{slug}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())

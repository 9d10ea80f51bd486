"""CIFAR-10 (the JPEG copy, `data=cifar10_jpeg`) in `make bench`:

- decode = the data setup of a first run (unpack the archive, decode 60,000 JPEGs into the cache, set up the
  splits) / a cached start (the same setup once the cache exists), each timed in this process from building the
  datamodule to both splits being ready; the cached start alone has a target of its own (≤ 5 s).
- cifar10_fast = `cnnlab-train experiment=cifar10_fast` at several epoch budgets, each timed as the whole command
  (start to exit: imports, data, training, test, pictures, W&B), against its test accuracy: the frontier of
  accuracy against wall-clock minutes, as a table and a plot."""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ACCELERATOR, PAIRS, Ratio, paired, scratch, timed_run

#: the framework alone, on the fast recipe's net, batch, precision and memory format
CIFAR = ["experiment=cifar10_fast"]
TARGET_MINUTES, TARGET_ACC = 10.0, 0.85


def data_setup_seconds(data_dir: Path, overrides: list[str] = CIFAR) -> float:
    """Seconds from building the datamodule to its fit and test splits being ready, with `data_dir` as
    paths.data_dir (empty: a first run; holding the cache: a cached start)."""
    from cnnlab.config import compose, to_plain
    from cnnlab.data import datamodule_from_config

    cfg = to_plain(compose([*ACCELERATOR, *overrides, f"paths.data_dir={data_dir}"], scratch("decode")))
    started = time.perf_counter()
    data = datamodule_from_config(cfg)
    data.setup("fit")
    data.setup("test")
    return time.perf_counter() - started


def measure_decode(pairs: int = PAIRS, progress=None) -> Ratio:
    ratio = Ratio("decode", "first run's data setup (unpack + decode 60,000 JPEGs) / cached start", "s",
                  b_target="≤ 5")
    data_dir = scratch("data")

    def first() -> float:
        shutil.rmtree(data_dir, ignore_errors=True)
        return data_setup_seconds(data_dir)

    paired(ratio, first, lambda: data_setup_seconds(data_dir), pairs, progress=progress)
    shutil.rmtree(data_dir, ignore_errors=True)
    return ratio


@dataclass
class Budget:
    """`experiment=cifar10_fast trainer.max_epochs=<epochs>`, run once per seed."""

    epochs: int
    minutes: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "minutes": self.minutes, "test_acc": self.accuracy}


def measure_frontier(budgets: list[int], seeds: list[int], progress=None) -> list[Budget]:
    """Every budget once per seed, budgets interleaved (seed by seed) so drift in the machine's speed spreads
    over all of them."""
    rows = [Budget(e) for e in budgets]
    for seed in seeds:
        for row in rows:
            if progress is not None:
                progress(f"cifar10_fast: {row.epochs} epochs, seed {seed}")
            run = timed_run([*CIFAR, f"trainer.max_epochs={row.epochs}", f"seed={seed}"])
            row.minutes.append(run.seconds / 60)
            row.accuracy.append(run.test_acc)
    return rows


def span(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """`median (min–max)` of the values, or the value alone when there is one."""
    med = f"{scale * statistics.median(values):.{digits}f}"
    return med if len(values) == 1 else f"{med} ({scale * min(values):.{digits}f}–{scale * max(values):.{digits}f})"


def frontier_table(rows: list[Budget]) -> list[str]:
    lines = ["| epochs | wall-clock minutes, whole command | test accuracy (flip TTA), % | runs |", "|---|---|---|---|"]
    for row in rows:
        met = statistics.median(row.minutes) <= TARGET_MINUTES and statistics.median(row.accuracy) >= TARGET_ACC
        lines.append(f"| {row.epochs} | {span(row.minutes)} | {span(row.accuracy, 100)}{' ✓' if met else ''} | "
                     f"{len(row.minutes)} |")
    return lines


def frontier_plot(rows: list[Budget], path: Path, machine: str, date: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for row in rows:
        ax.scatter(row.minutes, [100 * a for a in row.accuracy], color="tab:blue", alpha=0.35, s=18)
    ax.plot([statistics.median(r.minutes) for r in rows], [100 * statistics.median(r.accuracy) for r in rows],
            "o-", color="tab:blue", label="median per epoch budget")
    for row in rows:
        ax.annotate(f"{row.epochs} ep", (statistics.median(row.minutes), 100 * statistics.median(row.accuracy)),
                    textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.axhline(100 * TARGET_ACC, color="tab:red", lw=0.8, ls="--")
    ax.axvline(TARGET_MINUTES, color="tab:red", lw=0.8, ls="--", label="target: ≥ 85 % in ≤ 10 min")
    ax.set(xlabel="wall-clock minutes, whole cnnlab-train command", ylabel="test accuracy (%)",
           title=f"experiment=cifar10_fast on CIFAR-10 (JPEG copy)\n{machine}, {date}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

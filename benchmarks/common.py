"""What every benchmark shares: the device, runs of cnnlab-train in this process, and a measured ratio."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

#: `make bench` on a GPU machine uses it; on a CPU the same runs and ratios
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ACCELERATOR = ["trainer.accelerator=gpu" if DEVICE == "cuda" else "trainer.accelerator=cpu"]


def machine() -> str:
    """The machine the numbers were measured on, in words (for the README)."""
    if DEVICE == "cuda":
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    return f"{os.cpu_count()}-core CPU, {torch.get_num_threads()} torch threads, no GPU"


def scratch(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"cnnlab-bench-{name}-"))


def run_in_process(overrides: Sequence[str], run_dir: Path) -> dict[str, Any]:
    """`cnnlab-train OVERRIDES` in this process; its results (test/acc, perf/step_ms, wall_time_s, ...)."""
    from cnnlab.config import compose
    from cnnlab.train import train

    return train(compose([*ACCELERATOR, *overrides], run_dir))


#: every ratio is the median of at least this many A/B pairs, after one warm-up pair that is thrown away
PAIRS = 5


@dataclass
class Ratio:
    """A / B measured side by side: `a` and `b` are repeated samples taken in pairs, A then B, so each pair
    sees the same machine load; the ratio is the median of the pairs' ratios, and min–max of the pairs' ratios
    is its spread (this 2-core VM's speed drifts by ±20 % over tens of seconds, and a process's first run is
    slower still: `paired` throws a warm-up pair away). A target holds only if it holds at the median."""

    name: str
    meaning: str
    unit: str
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    target: str = ""  # e.g. "≤ 1.05"
    b_target: str = ""  # a bound on B's median itself, e.g. "≤ 5" (seconds for a cached start)
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d"))  # when it was measured

    @classmethod
    def from_dict(cls, saved: dict[str, Any], date: str) -> Ratio:
        """A ratio as `as_dict` wrote it to a results file (older files carry their date on the file)."""
        return cls(saved["name"], saved["meaning"], saved["unit"], list(saved["a"]), list(saved["b"]),
                   saved.get("target", ""), saved.get("b_target", ""), saved.get("date", date))

    @property
    def pair_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.a, self.b)]

    @property
    def value(self) -> float:
        return statistics.median(self.pair_ratios)

    @property
    def spread(self) -> tuple[float, float]:
        """(lowest, highest) ratio of one pair."""
        return min(self.pair_ratios), max(self.pair_ratios)

    def met(self) -> bool | None:
        checks = [(self.value, self.target), (statistics.median(self.b) if self.b else 0.0, self.b_target)]
        results = [holds(value, bound) for value, bound in checks if bound]
        return all(results) if results else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "meaning": self.meaning, "unit": self.unit, "ratio": round(self.value, 3),
                "ratio_min": round(self.spread[0], 3), "ratio_max": round(self.spread[1], 3), "pairs": len(self.a),
                "a_median": statistics.median(self.a), "b_median": statistics.median(self.b),
                "a": self.a, "b": self.b, "target": self.target, "b_target": self.b_target, "met": self.met(),
                "date": self.date}


def holds(value: float, target: str) -> bool:
    """Whether `value` meets a target such as "≤ 1.05" or "≥ 10"."""
    op, bound = target.split()
    return value <= float(bound) if op == "≤" else value >= float(bound)


def paired(ratio: Ratio, measure_a: Callable[[], float], measure_b: Callable[[], float], pairs: int = PAIRS,
           warmup: bool = True, progress: Callable[[str], None] | None = None) -> Ratio:
    """Fill `ratio` with `pairs` A-then-B pairs, after one warm-up pair (first-run costs: page cache, allocator,
    lazy imports) that is measured and thrown away."""
    for i in range(-1 if warmup else 0, pairs):
        if progress is not None:
            progress(f"{ratio.name}: {'warm-up pair' if i < 0 else f'pair {i + 1}/{pairs}'}")
        a, b = measure_a(), measure_b()
        if i >= 0:
            ratio.a.append(a)
            ratio.b.append(b)
    return ratio


@dataclass
class Timed:
    """One whole `cnnlab-train` command: its wall-clock seconds and test accuracy."""

    seconds: float
    test_acc: float
    results: dict = field(default_factory=dict)  # the run's results.json


def timed_run(overrides: list[str]) -> Timed:
    """`cnnlab-train OVERRIDES` in a fresh process, timed as the whole command (start to exit), and its test
    accuracy; a failed run raises with the end of its output."""
    run_dir = scratch("run")
    started = time.perf_counter()
    done = subprocess.run([cli(), *ACCELERATOR, *overrides, f"hydra.run.dir={run_dir}"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    results = run_dir / "results.json"
    if done.returncode != 0 or not results.is_file():
        raise RuntimeError(f"cnnlab-train {' '.join(overrides)} failed (exit {done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    saved = json.loads(results.read_text())
    return Timed(seconds, saved["test/acc"], saved)


def cli() -> str:
    """The `cnnlab-train` next to this interpreter (the .venv's)."""
    import sys

    return str(Path(sys.executable).parent / "cnnlab-train")

"""What every benchmark shares: the device, runs of cnnlab-train in this process, and a measured ratio."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Sequence
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


@dataclass
class Ratio:
    """A / B measured side by side: `a` and `b` are repeated samples taken in pairs, A then B, so each pair
    sees the same machine load; the ratio is the median of the pairs' ratios (this 2-core VM's speed
    drifts by ±20 % over tens of seconds, far more than the differences measured here)."""

    name: str
    meaning: str
    unit: str
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    target: str = ""  # e.g. "≤ 1.05"

    @property
    def value(self) -> float:
        return statistics.median(a / b for a, b in zip(self.a, self.b))

    def met(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        return self.value <= float(bound) if op == "≤" else self.value >= float(bound)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "meaning": self.meaning, "unit": self.unit, "ratio": round(self.value, 3),
                "a_median": statistics.median(self.a), "b_median": statistics.median(self.b),
                "a": self.a, "b": self.b, "target": self.target, "met": self.met()}


def cli() -> str:
    """The `cnnlab-train` next to this interpreter (the .venv's)."""
    import sys

    return str(Path(sys.executable).parent / "cnnlab-train")

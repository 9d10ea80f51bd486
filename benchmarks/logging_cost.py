"""logging = wall time of the default run, with W&B offline and the pictures and probes at their default
cadence / the same run with `logger=none`; each timed as the whole `cnnlab-train` command. The same
default runs give the time for LeNet-5 to reach its test accuracy (the whole command, start to exit), and a
third run with `logger=none callbacks=base` (no pictures, no probes) shows what those cost on their own."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field

from benchmarks.common import ACCELERATOR, PAIRS, Ratio, cli, scratch


@dataclass
class Timed:
    seconds: float
    test_acc: float


def timed_run(overrides: list[str]) -> Timed:
    run_dir = scratch("run")
    started = time.perf_counter()
    done = subprocess.run([cli(), *ACCELERATOR, *overrides, f"hydra.run.dir={run_dir}"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    results = run_dir / "results.json"
    if done.returncode != 0 or not results.is_file():
        raise RuntimeError(f"cnnlab-train {' '.join(overrides)} failed (exit {done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return Timed(seconds, json.loads(results.read_text())["test/acc"])


@dataclass
class LoggingResult:
    logging: Ratio
    pictures_probes: Ratio
    default_runs: list[Timed] = field(default_factory=list)


def measure(overrides: list[str], pairs: int = PAIRS, progress=print) -> LoggingResult:
    """Triples (default run, logger=none, logger=none callbacks=base) after one warm-up triple thrown away."""
    result = LoggingResult(
        Ratio("logging", "default run (W&B offline, pictures, probes) / logger=none", "s", target="≤ 1.10"),
        Ratio("pictures+probes", "logger=none / logger=none callbacks=base (no pictures, no probes)", "s"))
    for i in range(-1, pairs):
        progress(f"logging: {'warm-up' if i < 0 else f'pair {i + 1}/{pairs}'}: default run, logger=none, "
                 "logger=none callbacks=base")
        full = timed_run(overrides)
        quiet = timed_run([*overrides, "logger=none"])
        bare = timed_run([*overrides, "logger=none", "callbacks=base"])
        if i < 0:
            continue
        result.default_runs.append(full)
        result.logging.a.append(full.seconds)
        result.logging.b.append(quiet.seconds)
        result.pictures_probes.a.append(quiet.seconds)
        result.pictures_probes.b.append(bare.seconds)
    return result

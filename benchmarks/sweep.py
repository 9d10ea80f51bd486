"""sweep = runs per hour of a 4-job sweep run in parallel (`hydra/launcher=parallel`: joblib, one process
per job, $CNNLAB_JOBS or 2 at a time) / the same sweep run one job after another (Hydra's basic
launcher), each timed as the whole `cnnlab-train -m` command a researcher types."""

from __future__ import annotations

import subprocess
import time

from benchmarks.common import ACCELERATOR, PAIRS, Ratio, cli, paired, scratch

JOBS = 4


def runs_per_hour(overrides: list[str], parallel: bool) -> float:
    sweep_dir = scratch("sweep")
    seeds = ",".join(str(s) for s in range(1, JOBS + 1))
    launcher = ["hydra/launcher=parallel"] if parallel else []
    command = [cli(), "-m", *ACCELERATOR, *overrides, f"seed={seeds}", *launcher,
               f"hydra.sweep.dir={sweep_dir}"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    finished = len(list(sweep_dir.glob("*/results.json")))
    if done.returncode != 0 or finished != JOBS:
        raise RuntimeError(f"the {'parallel' if parallel else 'one-by-one'} sweep finished {finished} of {JOBS} "
                           f"jobs (exit {done.returncode}); its output ends:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return JOBS * 3600 / seconds


def measure(overrides: list[str], pairs: int = PAIRS, progress=None) -> Ratio:
    ratio = Ratio("sweep", f"runs per hour, {JOBS}-job sweep in parallel / one by one", "runs/h", target="≥ 1.6")
    return paired(ratio, lambda: runs_per_hour(overrides, parallel=True),
                  lambda: runs_per_hour(overrides, parallel=False),
                  pairs, progress=progress)


if __name__ == "__main__":
    print(measure(["trainer.max_epochs=1"]).as_dict())

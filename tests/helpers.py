"""Helpers the tests import (`from helpers import ...`): configs composed exactly as `cnnlab-train` composes them,
shrunk to tiny real runs on CPU (`debug=test`), `cnnlab-train` in a fresh process, and small real data sets.
Fixtures live in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from cnnlab import REPO_ROOT
from cnnlab.config import compose
from cnnlab.loggers.wandb_offline import find_runs, read_run

#: the shared JPEG copy of CIFAR-10 (../shared/data/README.md); CNNLAB_CIFAR10_JPEG points elsewhere (.ci/run sets
#: it when the clone is not beside ../shared). conf/data/cifar10_jpeg.yaml reads the same variable.
CIFAR10_JPEG = Path(os.environ.get("CNNLAB_CIFAR10_JPEG", REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

CLI = str(Path(sys.executable).parent / "cnnlab-train")


def compose_run(*overrides: str, run_dir: Path, logger: str = "none", callbacks: str | None = "base") -> DictConfig:
    """compose('train', overrides) with Hydra's runtime set up as @hydra.main would, as a tiny real run
    (`debug=test`: 1 epoch of 20 batches on real MNIST, CPU, no progress bar). Pictures and probes
    are off unless asked for (`callbacks="default"`): they have tests of their own and cost seconds per run.
    `callbacks=None` keeps what the config chooses (an experiment's own callbacks)."""
    chosen = [f"callbacks={callbacks}"] if callbacks else []
    return compose([*chosen, "debug=test", f"logger={logger}", *overrides], run_dir, job_name=",".join(overrides))


def user_env() -> dict[str, str]:
    """The environment of a user's shell: logs/ under the cwd (no CNNLAB_LOG_DIR), and no WANDB_SERVICE (the W&B
    service that in-process tests start; a child joining it would share its runs, and a killed child's run id
    would stay "in use" there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CNNLAB_LOG_DIR", "WANDB_SERVICE")}
    env.update(WANDB_SILENT="true", COLUMNS="200")
    return env


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`cnnlab-train ARGS` in a fresh process, as a user would type it."""
    return subprocess.run([CLI, *args], cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=timeout)


def copy_shipped_mnist(dest: Path) -> Path:
    """A data dir holding only the shipped .gz files, as a fresh clone has."""
    raw = dest / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (REPO_ROOT / "data" / "MNIST" / "raw").glob("*.gz"):
        shutil.copy(gz, raw)
    return dest


def cifar_sample(archive: Path, dest: Path, per_class: int, splits: tuple[str, ...] = ("train", "test"),
                 classes: list[str] | None = None) -> Path:
    """A small ImageFolder layout of real CIFAR-10 JPEGs under `dest`: the first `per_class` files of each class
    of each split, copied byte for byte out of the archive (dest/<split>/<class>/NNNN.jpg)."""
    wanted = set(classes or CIFAR10_CLASSES)
    for (split, name), files in _first_files(Path(archive), per_class).items():
        if split not in splits or name not in wanted:
            continue
        for file, data in files[:per_class]:
            target = dest / split / name / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return dest


#: (archive, size, mtime) -> (files kept per class, {(split, class): [(file name, bytes), ...] in archive order})
_FIRST_FILES: dict[tuple[Path, int, int], tuple[int, dict[tuple[str, str], list[tuple[str, bytes]]]]] = {}


def _first_files(archive: Path, per_class: int) -> dict[tuple[str, str], list[tuple[str, bytes]]]:
    """The first files of every split/class of the archive, read once per process: one pass over the 60,000
    members takes ~2 s, and tests ask for many small samples."""
    import tarfile

    stat = archive.stat()
    key = (archive.resolve(), stat.st_size, stat.st_mtime_ns)
    kept, found = _FIRST_FILES.get(key, (0, {}))
    if kept < per_class:
        kept, found = max(per_class, 20), {}
        with tarfile.open(archive) as tar:
            for member in tar:
                parts = Path(member.name).parts  # cifar10-jpeg/<split>/<class>/<file>
                if not member.isfile() or len(parts) != 4:
                    continue
                files = found.setdefault(parts[1:3], [])
                if len(files) < kept:
                    files.append((parts[3], tar.extractfile(member).read()))
        _FIRST_FILES[key] = (kept, found)
    return found


# Resume: a run stopped in the middle and resumed must end as an uninterrupted one does (tests/test_resume.py,
# tests/test_slurm.py).
QUIET = ["++trainer.enable_progress_bar=false"]  # debug=test drops the rich bar; this, Lightning's own
# A real run long enough to be killed in the middle: 3 epochs of 40 batches, augmented (so the resumed data
# order and augmentation draws are checked too), W&B offline, CSV and TensorBoard, a resume checkpoint every 3 steps.
RESUMABLE_RUN = ["debug=test", "trainer.max_epochs=3", "trainer.limit_train_batches=40",
                 "transforms=affine", "callbacks=base", "callbacks.resume_checkpoint.every_n_steps=3",
                 "logger=[wandb,csv,tensorboard]", *QUIET]
#: logged numbers that measure the machine, not the run: left out of the comparison. A resumed run also lacks the
#: timing of the epoch it was stopped in when fewer than Throughput's warm-up steps were left of it (CI, 2026-12-03).
TIMING = ("perf/",)


def final_metrics(results: dict) -> dict:
    """What a run ends with: every test number, the best validation accuracy, epochs, confusion matrix."""
    return {k: v for k, v in results.items() if k.startswith("test/") or k in ("val/best", "epochs",
                                                                                "confusion_matrix")}


def _row(row: dict) -> dict:
    """A logged row as compared across runs: all but the timing numbers."""
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


def logged_history(run_dir: Path) -> dict[str, list]:
    """Everything the run logged, per logger, as a user reads it back: metrics.csv's rows; TensorBoard's scalars
    (tag, step, value) read with TensorBoard's own reader, which hides what a resumed run purged; the W&B run's
    scalar rows, from its newest offline segment (the one `wandb sync` keeps)."""
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        csv_rows = [_row({k: v for k, v in row.items() if v != ""}) for row in csv.DictReader(file)]
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    scalars = [(tag, e.step, e.value) for tag in sorted(events.Tags()["scalars"]) if not tag.startswith(TIMING)
               for e in events.Scalars(tag)]
    wandb_rows = [_row({k: v for k, v in row.items() if not k.startswith("_") and isinstance(v, (int, float))})
                  for row in read_run(find_runs(run_dir)[-1])["history"]]
    return {"csv": csv_rows, "tensorboard": scalars, "wandb": [r for r in wandb_rows if len(r) > 1]}

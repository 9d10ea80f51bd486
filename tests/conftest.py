"""Fixtures: configs composed exactly as `cnnlab-train` composes them, shrunk to tiny real runs on CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cnnlab import REPO_ROOT
from cnnlab.config import compose

#: the shared JPEG copy of CIFAR-10 (../shared/data/README.md); CNNLAB_CIFAR10_JPEG points elsewhere (.ci/run sets
#: it when the clone is not beside ../shared). conf/data/cifar10_jpeg.yaml reads the same variable.
CIFAR10_JPEG = Path(os.environ.get("CNNLAB_CIFAR10_JPEG", REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# A real run, kept small: 1 epoch of 20 batches on real MNIST, CPU, no progress bar.
TINY = ["debug=limit", "trainer.accelerator=cpu", "++callbacks.rich_progress_bar=null", "++callbacks.model_summary=null"]
CLI = str(Path(sys.executable).parent / "cnnlab-train")


def compose_run(*overrides: str, run_dir: Path, logger: str = "none", callbacks: str | None = "base") -> DictConfig:
    """compose('train', overrides) with Hydra's runtime set up as @hydra.main would. Pictures and probes
    are off unless asked for (`callbacks="default"`): they have tests of their own and cost seconds per run.
    `callbacks=None` keeps what the config chooses (an experiment's own callbacks)."""
    chosen = [f"callbacks={callbacks}"] if callbacks else []
    return compose([*chosen, *TINY, f"logger={logger}", *overrides], run_dir, job_name=",".join(overrides))


@pytest.fixture
def make_cfg(tmp_path: Path):
    def _make(*overrides: str, logger: str = "none", callbacks: str = "base", run_dir: Path | None = None):
        return compose_run(*overrides, run_dir=run_dir or tmp_path / "run", logger=logger, callbacks=callbacks)

    yield _make
    GlobalHydra.instance().clear()


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


@pytest.fixture(scope="session")
def mnist_digits(tmp_path_factory) -> torch.Tensor:
    """The first 256 real MNIST test digits as floats in [0, 1], shape (256, 1, 28, 28)."""
    from cnnlab.data import DATASETS, load_split

    root = copy_shipped_mnist(tmp_path_factory.mktemp("mnist"))
    test_set = load_split(DATASETS.get("mnist"), root, train=False, transform=None, download=False)
    return test_set.data[:256].unsqueeze(1).float() / 255


@pytest.fixture(scope="session")
def cifar10_jpeg() -> Path:
    """The real CIFAR-10 JPEG archive; its absence fails the tests that need it, naming where it was looked for."""
    if not CIFAR10_JPEG.is_file():
        pytest.fail(f"the CIFAR-10 JPEG copy is not at {CIFAR10_JPEG}: set CNNLAB_CIFAR10_JPEG to "
                    "shared/data/cifar10-jpeg.tar.gz (see ../shared/data/README.md)")
    return CIFAR10_JPEG


def cifar_sample(archive: Path, dest: Path, per_class: int, splits: tuple[str, ...] = ("train", "test"),
                 classes: list[str] | None = None) -> Path:
    """A small ImageFolder layout of real CIFAR-10 JPEGs under `dest`: the first `per_class` files of each class
    of each split, copied byte for byte out of the archive (dest/<split>/<class>/NNNN.jpg)."""
    import tarfile

    wanted = set(classes or CIFAR10_CLASSES)
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts  # cifar10-jpeg/<split>/<class>/<file>
            if not member.isfile() or len(parts) != 4 or parts[1] not in splits or parts[2] not in wanted:
                continue
            if taken.get(parts[1:3], 0) >= per_class:
                continue
            taken[parts[1:3]] = taken.get(parts[1:3], 0) + 1
            target = dest / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    return dest

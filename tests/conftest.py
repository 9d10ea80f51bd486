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

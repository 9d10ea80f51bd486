"""Fixtures only; the helpers tests import (compose_run, run_cli, cifar_sample, ...) live in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from helpers import CIFAR10_JPEG, compose_run, copy_shipped_mnist


@pytest.fixture
def make_cfg(tmp_path: Path):
    def _make(*overrides: str, logger: str = "none", callbacks: str = "base", run_dir: Path | None = None):
        return compose_run(*overrides, run_dir=run_dir or tmp_path / "run", logger=logger, callbacks=callbacks)

    yield _make
    GlobalHydra.instance().clear()


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

"""Smoke tests for the GPU paths: trainer=gpu, trainer=ddp (every GPU) and the resident CUDA data path. They run
where CUDA is available (a GPU machine: `make test` there, beside `make bench`) and are skipped, saying so,
everywhere else."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import run_cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: the GPU "
                                 "paths are tested where one exists")]
TINY = ["debug=limit", "logger=none", "callbacks=base", "callbacks.rich_progress_bar=null"]


def results(cwd) -> dict:
    (path,) = list((cwd / "logs" / "runs").glob("*/*/results.json"))
    return json.loads(path.read_text())


def test_trainer_gpu_trains_and_tests_on_the_gpu_with_the_images_resident_there(tmp_path):
    done = run_cli("trainer=gpu", "data.resident=true", *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0.5 < results(tmp_path)["test/acc"] <= 1  # 20 batches of LeNet-5 on MNIST
    log = next((tmp_path / "logs" / "runs").glob("*/*/train.log")).read_text()
    assert "GPU available: True (cuda), used: True" in log


def test_trainer_gpu_trains_through_the_dataloader_path_too(tmp_path):
    done = run_cli("trainer=gpu", "data.resident=false", *TINY, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0.5 < results(tmp_path)["test/acc"] <= 1


def test_trainer_ddp_on_every_gpu_writes_one_run(tmp_path):
    done = run_cli("trainer=ddp", *TINY, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "logs" / "runs").glob("*/*/results.json"))) == 1
    assert 0.3 < results(tmp_path)["test/acc"] <= 1

"""`cnnlab-train` as a user types it, in fresh processes: from any directory, multirun, clean errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cnnlab import REPO_ROOT
from cnnlab.loggers.wandb_offline import find_runs, read_run
from helpers import run_cli

QUICK = ["debug=test"]


@pytest.mark.slow
def test_train_from_any_directory_writes_its_own_run_dir(tmp_path):
    done = run_cli("model=lenet5", "pooling=avg", "activation=tanh", "data=mnist", "trainer.max_epochs=2",
                   "trainer.limit_train_batches=10", *QUICK, "logger=csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list((tmp_path / "logs" / "runs").glob("*/*"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", f"{run_dir.parent.name}/{run_dir.name}")
    config = (run_dir / "config.yaml").read_text()
    assert "name: avg" in config and "name: tanh" in config and "max_epochs: 2" in config
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and list(run_dir.glob("checkpoints/best-*.ckpt"))
    assert (run_dir / "csv" / "metrics.csv").exists()
    out = done.stdout
    assert "cnnlab run finished" in out and re.search(r"test accuracy\s+\d+\.\d\d %", out)
    assert f"run dir       logs/runs/{run_dir.parent.name}/{run_dir.name}" in out


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel"]], ids=["one-by-one", "parallel"])
@pytest.mark.slow
def test_multirun_gives_one_job_dir_and_one_wandb_run_per_job(tmp_path, launcher):
    done = run_cli("-m", *launcher, "pooling=max,avg", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = list((tmp_path / "logs" / "multiruns").glob("*/*"))
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0", "1"]
    runs = [read_run(r) for r in find_runs(sweep_dir)]
    assert len(runs) == 2
    names = sorted(r["name"] for r in runs)  # named after each job's overrides
    assert names == [f"debug=test,pooling={p}" for p in ("avg", "max")]
    assert {r["state"] for r in runs} == {"finished"}
    assert len({r["group"] for r in runs}) == 1 and runs[0]["group"].startswith("sweep-")
    assert {r["config"]["pooling"]["name"] for r in runs} == {"max", "avg"}
    assert all("test/acc" in r["summary"] for r in runs)
    assert "cnnlab sweep finished" in done.stdout and done.stdout.count(" ok ") == 2


@pytest.mark.slow
def test_a_failing_sweep_job_does_not_stop_the_others_and_is_listed(tmp_path):
    done = run_cli("-m", "model=simple_cnn", "model.depth=9,2", *QUICK, "logger=none", cwd=tmp_path)
    assert done.returncode == 1
    (sweep_dir,) = list((tmp_path / "logs" / "multiruns").glob("*/*"))
    assert "shrinks the feature map below 1×1" in (sweep_dir / "0" / "error.txt").read_text()
    assert (sweep_dir / "1" / "results.json").exists()  # the good job still ran
    assert "cnnlab sweep finished" in done.stdout and "failed: model 'simple_cnn' shrinks" in done.stdout
    assert "1 of 2 job(s) failed: 0" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["model.name=lenet"], 2, "Unknown model 'lenet' (config key `model.name`). Valid model names: alexnet, "
                                  "capsnet, densenet, fast_cnn, googlenet, lenet5, locally_connected, mlp, p4cnn, "
                                  "resnet18, resnet20, rnn, simple_cnn, stn, vgg11, vgg16, vit, zfnet. Did you mean "
                                  "'lenet5'?"),
        (["model=simple_cnn", "model.depth=6"], 2, "stage 'block5' (conv 3×3 stride 1 + max pool 2×2 stride 2) "
                                                   "receives a 1×1 map"),
        (["data=kmnist", "data.download=false", "paths.data_dir=/nonexistent/cnnlab"], 2,
         "Dataset 'kmnist' is not in /nonexistent/cnnlab"),
        (["pooling=maxpool"], 1, "Could not find 'pooling/maxpool'"),
    ],
    ids=["unknown-model", "shrinks-below-1x1", "dataset-missing-offline", "unknown-config-option"],
)
@pytest.mark.slow
def test_cli_errors_are_one_paragraph_without_traceback(tmp_path, args, code, expected):
    done = run_cli(*args, *QUICK, "logger=none", cwd=tmp_path)
    assert done.returncode == code
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # colours
    targets = re.findall(r"^([a-zA-Z_-]+):.*?## ", (REPO_ROOT / "Makefile").read_text(), flags=re.M)
    assert {"help", "install", "train", "check", "test", "sweep"} <= set(targets)
    for target in targets:
        assert re.search(rf"\b{target}\b", out), target
    assert Path(REPO_ROOT / ".ci" / "run").read_text().strip().endswith("make test")


@pytest.mark.parametrize("args, says", [
    (["NAME=bogus"], "NAME must be one of: abstraction architectures"),
    (["NAME=pooling", "DATA=imagenet"], "DATA must be one of:"),
])
def test_make_experiment_refuses_an_unknown_name_or_data_before_running(args, says):
    done = subprocess.run(["make", "-s", "experiment", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and says in done.stdout, (done.stdout, done.stderr)
    assert "cifar10_jpeg" in done.stdout or "NAME" in says

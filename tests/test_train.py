"""Real short MNIST runs, in-process: what lands in W&B and the run dir, and checkpoints that reload (bad
input is tests/test_bad_input.py's table)."""

from __future__ import annotations

import json

import lightning as L
import pytest
import yaml

from cnnlab.data import datamodule_from_config
from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.models import list_models
from cnnlab.module import ImageClassifier
from cnnlab.train import train

pytestmark = pytest.mark.slow  # every test here trains real MNIST runs in this process


def test_short_run_writes_an_offline_wandb_run_with_metrics_and_resolved_config(make_cfg, tmp_path):
    results = train(make_cfg("seed=7", logger="wandb"))
    run_dir = tmp_path / "run"
    (wandb_run,) = find_runs(run_dir)
    assert wandb_run.parent == run_dir / "wandb" and wandb_run.name.startswith("offline-run-")
    logged = read_run(wandb_run)
    assert logged["state"] == "finished"
    config = logged["config"]
    assert config["model"]["name"] == "lenet5" and config["pooling"]["name"] == "native"
    assert config["data"]["image_size"] == 32  # resolved from ${model.image_size}, not the interpolation
    assert config["seed"] == 7 and config["trainer"]["max_epochs"] == 1
    assert config["paths"]["output_dir"] == str(run_dir)
    summary = logged["summary"]
    assert summary["test/acc"] == pytest.approx(results["test/acc"]) and 0.5 < summary["test/acc"] <= 1
    assert "test/acc_class/7_seven" in summary and summary["run_dir"] == str(run_dir)
    history_keys = set().union(*logged["history"])
    assert {"train/loss", "val/acc", "val/loss", "train/acc", "test/acc"} <= history_keys
    # the run dir holds the resolved config, both checkpoints and the results
    assert "image_size: 32" in (run_dir / "config.yaml").read_text()
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("best-epoch00-val_acc") for n in ckpts)
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["test/acc"] == results["test/acc"]
    assert sum(map(sum, saved["confusion_matrix"])) == 2 * 1000  # two test batches of 1000 images


@pytest.mark.parametrize("model", list_models())
def test_every_model_trains_a_short_epoch_on_mnist(make_cfg, model):
    """`cnnlab-train model=<name>` with each registered model: real MNIST, a few steps, test, reloadable."""
    results = train(make_cfg(f"model={model}", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
                             "trainer.limit_test_batches=1", "data.eval_batch_size=128"))
    assert results["model"] == model and results["epochs"] == 1
    assert 0 <= results["test/acc"] <= 1 and results["test/loss"] == pytest.approx(results["test/loss"])  # not NaN
    restored = ImageClassifier.load_from_checkpoint(results["best_ckpt"])
    assert restored.hparams.model["name"] == model and restored.net.stage_shapes()


def test_load_from_checkpoint_reproduces_the_test_accuracy(make_cfg, tmp_path):
    results = train(make_cfg("callbacks.lr_monitor=null"))
    restored = ImageClassifier.load_from_checkpoint(results["best_ckpt"])
    assert restored.hparams.model == {"name": "lenet5", "image_size": 32, "depth": None, "width": None}
    # the run dir's config.yaml is enough to rebuild the data exactly as the run saw it
    run_config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    datamodule = datamodule_from_config(run_config)
    trainer = L.Trainer(accelerator="cpu", logger=False, limit_test_batches=2, enable_progress_bar=False,
                        enable_model_summary=False)
    (metrics,) = trainer.test(restored, datamodule=datamodule, verbose=False)
    assert metrics["test/acc"] == pytest.approx(results["test/acc"], abs=1e-6)

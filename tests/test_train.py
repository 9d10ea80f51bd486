"""Real short MNIST runs, in-process: what lands in W&B and the run dir, checkpoints that reload, and the
errors a user meets first."""

from __future__ import annotations

import json

import lightning as L
import pytest
import yaml

from cnnlab.data import datamodule_from_config
from cnnlab.errors import CnnlabError
from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.models import list_models
from cnnlab.module import ImageClassifier
from cnnlab.train import train


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


def test_corrupt_and_mismatched_checkpoints_fail_clearly(make_cfg, tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(CnnlabError, match=rf"ckpt_path={junk} is not a readable checkpoint \(corrupt"):
        train(make_cfg(f"ckpt_path={junk}", run_dir=tmp_path / "a"))
    with pytest.raises(CnnlabError, match=r"ckpt_path=.*missing.ckpt does not exist"):
        train(make_cfg(f"ckpt_path={tmp_path / 'missing.ckpt'}", run_dir=tmp_path / "b"))

    trained = train(make_cfg(run_dir=tmp_path / "c"))["best_ckpt"]
    with pytest.raises(CnnlabError) as err:
        train(make_cfg("model=simple_cnn", f"ckpt_path={trained}", run_dir=tmp_path / "d"))
    assert "was trained with a different network: model.depth=None (this run: 3)" in str(err.value)
    assert "model.name='lenet5' (this run: 'simple_cnn')" in str(err.value)
    with pytest.raises(CnnlabError, match=r"pooling.name='native' \(this run: 'avg'\)"):
        train(make_cfg("pooling=avg", f"ckpt_path={trained}", run_dir=tmp_path / "e"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pooling.name=mx"], r"Unknown pooling 'mx' \(config key `pooling.name`\).*avg, blur, lp, max, native, none"),
        (["activation.name=relu6"], r"Unknown activation 'relu6'.*gelu"),
        (["data.name=cifar"], r"Unknown dataset 'cifar' \(config key `data.name`\).*Did you mean"),
        (["model=simple_cnn", "model.depth=5"], r"simple_cnn' shrinks the feature map below 1×1: stage 'block5'"),
        (["train=false"], r"train=false only tests a trained model, and ckpt_path is not set"),
        (["+trainer.max_epoch=3"], r"Unknown trainer setting\(s\) trainer.max_epoch\. Valid.*max_epochs"),
        (["trainer.max_epochs=abc"], r"trainer.max_epochs='abc' has the wrong type: expected int or null"),
        (["optimizer.lr=-1"], r"optimizer 'adam' rejects options .*Invalid learning rate: -1"),
    ],
)
def test_config_errors_name_the_bad_value(make_cfg, overrides, message):
    with pytest.raises(CnnlabError, match=message):
        train(make_cfg(*overrides))

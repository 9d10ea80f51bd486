"""experiment=cifar10_fast and its parts: the whitening layer set from real CIFAR-10 patches, lookahead over an
EMA of the weights, flip test-time augmentation, and a short real run of the whole recipe."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cnnlab import REPO_ROOT
from cnnlab.callbacks.lookahead import Lookahead
from cnnlab.data import datamodule_from_config
from cnnlab.data.folder import open_folder
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.models.fast_cnn import whitening_filters
from cnnlab.module import ImageClassifier
from cnnlab.train import train


@pytest.fixture(scope="module")
def cifar_images(cifar10_jpeg):
    source = open_folder(cifar10_jpeg, REPO_ROOT / "data")
    images = source.splits["train"].data[:2000].float() / 255
    mean, std = torch.tensor(source.mean).view(1, 3, 1, 1), torch.tensor(source.std).view(1, 3, 1, 1)
    return (images - mean) / std


def test_the_whitening_filters_decorrelate_real_cifar_patches(cifar_images):
    filters = whitening_filters(cifar_images, 2)
    assert filters.shape == (24, 3, 2, 2) and torch.equal(filters[12:], -filters[:12])
    out = F.conv2d(cifar_images, filters[:12]).permute(1, 0, 2, 3).reshape(12, -1).double()
    covariance = out @ out.T / out.shape[1]
    # whitened: unit variance along the strong directions (eigenvalue >> eps), nothing between directions
    assert torch.allclose(covariance.diagonal()[:6], torch.ones(6, dtype=torch.float64), atol=0.02)
    assert (covariance - torch.diag(covariance.diagonal())).abs().max() < 1e-3
    raw = F.conv2d(cifar_images, torch.eye(12).view(12, 3, 2, 2)).permute(1, 0, 2, 3).reshape(12, -1).double()
    raw_cov = raw @ raw.T / raw.shape[1]
    assert (raw_cov - torch.diag(raw_cov.diagonal())).abs().max() > 0.5  # raw neighbouring pixels correlate


def test_fast_cnn_sets_its_whitening_layer_from_data_and_keeps_it_frozen(cifar_images):
    net = create_model("fast_cnn", num_classes=10, in_channels=3, image_size=32)
    conv = net.stages["whiten"].conv
    assert not conv.weight.requires_grad and conv.bias.requires_grad
    net.init_from_data(cifar_images)
    assert torch.allclose(conv.weight, whitening_filters(cifar_images, 2))
    assert [name for name, _ in net.named_stages()] == ["whiten", "block1", "block2", "block3", "pool", "logits"]
    assert net.stage_shapes()["block3"] == (128, 3, 3)


def fake_trainer(step: int, batch_idx: int, batches: int = 10, total: int = 100):
    return SimpleNamespace(global_step=step, current_epoch=0, estimated_stepping_batches=total,
                           num_training_batches=batches), batch_idx


def test_lookahead_pulls_the_weights_to_their_average_and_ends_each_epoch_on_it():
    module = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    callback = Lookahead(every_n_steps=5, decay=0.9, power=1.0)
    callback.on_train_batch_end(*fake_trainer(5, 4)[:1], module, None, None, 4)  # first update: the average starts
    assert torch.equal(callback.average["weight"], torch.ones(1, 2))
    with torch.no_grad():
        module.weight.fill_(3.0)
    callback.on_train_batch_end(*fake_trainer(6, 5)[:1], module, None, None, 5)  # not an update step
    assert torch.equal(module.weight, torch.full((1, 2), 3.0))
    callback.on_train_batch_end(*fake_trainer(50, 6, total=100)[:1], module, None, None, 6)
    rho = 0.9 ** 5 * (50 / 100) ** 1.0
    expected = rho * 1.0 + (1 - rho) * 3.0
    assert torch.allclose(module.weight, torch.full((1, 2), expected)) and torch.equal(callback.average["weight"],
                                                                                         module.weight.detach())
    with torch.no_grad():
        module.weight.fill_(7.0)
    callback.on_train_batch_end(*fake_trainer(51, 9)[:1], module, None, None, 9)  # the epoch's last batch
    assert torch.allclose(module.weight, torch.full((1, 2), expected))  # back on the average
    restored = Lookahead()
    restored.load_state_dict(callback.state_dict())
    assert torch.equal(restored.average["weight"], callback.average["weight"])
    with pytest.raises(CnnlabError, match=r"lookahead.every_n_steps must be a whole number ≥ 1.*got 0"):
        Lookahead(every_n_steps=0)


def test_flip_tta_averages_each_image_with_its_mirror_and_bad_values_are_named():
    module = ImageClassifier(model={"name": "simple_cnn", "image_size": 32}, num_classes=10, in_channels=3,
                             tta="flip").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(module.evaluate(x), (module(x) + module(x.flip(-1))) / 2)
    with pytest.raises(CnnlabError, match=r"tta='mirror' is not valid. Valid: none, flip"):
        ImageClassifier(model={"name": "simple_cnn", "image_size": 32}, num_classes=10, in_channels=3, tta="mirror")


@pytest.mark.slow
def test_a_short_cifar10_fast_run_learns_well_above_chance(make_cfg, cifar_images, tmp_path):
    cfg = make_cfg("experiment=cifar10_fast", "trainer.max_epochs=1", "trainer.limit_train_batches=30",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=null", callbacks=None)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.channels_last and cfg.tta == "flip"
    assert "lookahead" in cfg.callbacks and cfg.callbacks.filter_pictures.every_n_epochs == 0
    results = train(cfg)
    assert results["test/acc"] > 0.4  # 30 steps of 1024 images; chance is 0.1, on all 10,000 test images
    # the whitening layer in the checkpoint is the one set from the run's first 5,000 training images
    data = datamodule_from_config(yaml.safe_load((tmp_path / "run" / "config.yaml").read_text()))
    data.setup("fit")
    restored = ImageClassifier.load_from_checkpoint(results["best_ckpt"])
    assert torch.allclose(restored.net.stages["whiten"].conv.weight, whitening_filters(data.train_images(5000), 2),
                          atol=1e-4)
    assert (tmp_path / "run" / "pictures" / "index.jsonl").read_text().count("\n") >= 5

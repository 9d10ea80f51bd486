"""Every option of every config group composes, and the ones that build objects build them."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from cnnlab import CONF_DIR
from cnnlab.callbacks import build_callbacks
from cnnlab.config import to_plain
from cnnlab.data import DATASETS, ImageDataModule
from cnnlab.data.transforms import build_transform
from cnnlab.module import ImageClassifier
from cnnlab.optim import build_optimizer, build_scheduler
from helpers import cifar_sample

GROUPS = ["data", "model", "pooling", "activation", "transforms", "optimizer", "scheduler", "trainer", "logger",
          "callbacks", "experiment", "hparams_search", "debug"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]


def dataset_spec(cfg, tmp_path, archive):
    """The dataset's spec; an image folder's is read from its images (data=folder gets a small real one)."""
    if cfg["data"]["name"] != "folder":
        return DATASETS.get(cfg["data"]["name"])
    root = cfg["data"]["root"] or str(cifar_sample(archive, tmp_path / "photos", per_class=2))
    data_dir = cfg["paths"]["data_dir"] if cfg["data"]["root"] else tmp_path / "data"
    return ImageDataModule(**{**cfg["data"], "root": root}, data_dir=data_dir).spec


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_builds(make_cfg, tmp_path, cifar10_jpeg, group, option):
    cfg = to_plain(make_cfg(f"{group}={option}"))
    assert {"data", "model", "pooling", "activation", "optimizer", "trainer", "paths"} <= set(cfg)
    spec = dataset_spec(cfg, tmp_path, cifar10_jpeg)
    image_size = cfg["data"]["image_size"] or spec.image_size
    module = ImageClassifier(model={**cfg["model"], "image_size": image_size}, num_classes=spec.num_classes,
                             in_channels=spec.in_channels, pooling=cfg["pooling"], activation=cfg["activation"],
                             optimizer=cfg["optimizer"], scheduler=cfg["scheduler"])
    logits = module(torch.zeros(2, spec.in_channels, image_size, image_size))
    assert logits.shape == (2, spec.num_classes)
    opt = build_optimizer(cfg["optimizer"], module)
    build_scheduler(cfg["scheduler"], opt, max_epochs=2, total_steps=10)
    for train in (True, False):
        build_transform(cfg["transforms"], spec, image_size, train=train)
    assert all(isinstance(c, Callback) for c in build_callbacks(cfg["callbacks"], tmp_path, has_logger=True))


def test_the_config_docs_list_every_option():
    doc = (CONF_DIR / "README.md").read_text()
    for group, option in OPTIONS:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{group}/`"))
        assert option in row, f"conf/README.md does not list {group}={option}"

"""The tensor-resident data path and the per-step work of a training step: batches equal the DataLoader
path's, augmentation is torchvision's RandomAffine drawn per image, epochs are seeded orders, DDP ranks
split the data, and a step logs only when the logger writes."""

from __future__ import annotations

import csv

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from cnnlab.data import ImageDataModule
from cnnlab.data import resident as resident_module
from cnnlab.data.resident import ResidentLoader, ResidentSubset
from cnnlab.data.transforms import BatchAffine
from cnnlab.errors import CnnlabError
from cnnlab.train import train
from helpers import copy_shipped_mnist


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    return copy_shipped_mnist(tmp_path_factory.mktemp("mnist"))


def datamodule(root, resident, **options) -> ImageDataModule:
    dm = ImageDataModule(data_dir=root, image_size=32, val_size=500, resident=resident, **options)
    dm.setup("fit")
    dm.setup("test")
    return dm


@pytest.mark.parametrize("angle,translate,scale,shear", [
    (30, (0, 0), 1.0, (0, 0)), (-45, (3, -2), 1.0, (0, 0)), (10, (1, 2), 0.9, (0, 0)),
    (0, (0, 0), 1.2, (15, 0)), (20, (2, 1), 1.1, (10, -5)), (90, (0, 0), 1.0, (0, 0)),
])
def test_batched_affine_equals_torchvision_affine_pixel_for_pixel(mnist_digits, angle, translate, scale, shear):
    images = TF.pad(mnist_digits[:16], [2, 2, 2, 2])
    expected = TF.affine(images, angle=angle, translate=list(translate), scale=scale, shear=list(shear))
    full = lambda v: torch.full((len(images),), float(v))  # noqa: E731
    got = BatchAffine.apply(images, full(angle), full(translate[0]), full(translate[1]), full(scale),
                            full(shear[0]), full(shear[1]))
    assert expected.sum() > 100 and torch.equal(got, expected)


def test_batched_affine_draws_its_own_parameters_for_every_image(mnist_digits):
    from torchvision.transforms import v2

    same = mnist_digits[:1].repeat(64, 1, 1, 1)
    out = BatchAffine(v2.RandomAffine(degrees=180))(same, torch.Generator().manual_seed(0))
    distinct = {tuple(o.flatten().nonzero().flatten()[:20].tolist()) for o in out}
    assert len(distinct) > 50  # RandomAffine on the batch would move all 64 copies the same way


def test_resident_batches_equal_the_dataloader_path(mnist_root):
    fast, slow = datamodule(mnist_root, True), datamodule(mnist_root, False, num_workers=0)
    assert isinstance(fast.train_dataloader(), ResidentLoader) and fast.resident_device == torch.device("cpu")
    assert slow.resident_device is None
    for fast_loader, slow_loader in ((fast.val_dataloader(), slow.val_dataloader()),
                                     (fast.test_dataloader(), slow.test_dataloader())):
        (xf, yf), (xs, ys) = next(iter(fast_loader)), next(iter(slow_loader))
        assert xf.shape == xs.shape == (500 if len(fast_loader.dataset) == 500 else 1000, 1, 32, 32)
        assert torch.equal(yf, ys) and torch.allclose(xf, xs, atol=1e-5)
    image, label = fast.val_set[7]  # what pictures and probes read, image by image
    expected, expected_label = slow.val_set[7]
    assert label == expected_label and torch.allclose(image, expected, atol=1e-5)
    assert len(fast.train_dataloader()) == len(slow.train_dataloader())


def test_an_epoch_is_a_seeded_shuffle_of_every_training_image(mnist_root):
    dm = datamodule(mnist_root, True, batch_size=1000, transforms={"normalize": False})
    loader = dm.train_dataloader()
    train_ids = dm.train_set.indices
    # label every training image with its own index, so batches say which images they hold
    loader.subset = ResidentSubset(dm.train_set.images, torch.arange(len(dm.train_set.images)), train_ids,
                                   dm.train_set.transform)
    epoch0 = torch.cat([y for _, y in loader])
    assert sorted(epoch0.tolist()) == sorted(train_ids.tolist())  # each image once
    assert torch.equal(epoch0, torch.cat([y for _, y in loader]))  # same epoch, same order (resume)
    loader.set_epoch(1)
    epoch1 = torch.cat([y for _, y in loader])
    assert not torch.equal(epoch0, epoch1) and sorted(epoch1.tolist()) == sorted(epoch0.tolist())


def test_ddp_ranks_take_disjoint_shares_of_equal_length(mnist_root):
    dm = datamodule(mnist_root, True, batch_size=100)
    subset = ResidentSubset(dm.train_set.images, torch.arange(len(dm.train_set.images)), dm.train_set.indices,
                            dm.train_set.transform)
    shares = [torch.cat([y for _, y in ResidentLoader(subset, 100, True, seed=3, rank=r,
                                                      world_size=3)]) for r in range(3)]
    assert len({len(s) for s in shares}) == 1  # ranks step together
    assert set(torch.cat(shares).tolist()) == set(dm.train_set.indices.tolist())


def test_resident_choice_is_checked_and_auto_falls_back_to_dataloaders(mnist_root, monkeypatch):
    with pytest.raises(CnnlabError, match=r"data.resident must be true .* false .* or auto .*got 'yes'"):
        ImageDataModule(resident="yes")
    monkeypatch.setattr(resident_module, "AUTO_LIMIT_BYTES", 1000)
    monkeypatch.setattr("cnnlab.data.datamodule.AUTO_LIMIT_BYTES", 1000)
    dm = datamodule(mnist_root, "auto", num_workers=0)
    assert dm.resident_device is None and not isinstance(dm.train_dataloader(), ResidentLoader)


@pytest.mark.slow
def test_a_run_logs_the_loss_only_when_the_logger_writes_and_its_speed_per_epoch(make_cfg, tmp_path):
    """Each self.log costs Lightning bookkeeping (and a GPU sync for the bar): train/loss is the mean of the
    steps since the last write, written every log_every_n_steps; perf/* once per epoch."""
    results = train(make_cfg("trainer.log_every_n_steps=5", "trainer.max_epochs=2", logger="csv"))
    (metrics_csv,) = (tmp_path / "run").rglob("metrics.csv")
    rows = list(csv.DictReader(metrics_csv.open()))
    loss_steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert loss_steps == [4, 9, 14, 19, 24, 29, 34, 39]  # 2 epochs of 20 batches, every 5th step
    epoch_rows = [r for r in rows if r.get("perf/step_ms")]
    assert len(epoch_rows) == 2 and all(float(r["perf/images_per_s"]) > 100 for r in epoch_rows)
    assert len([r for r in rows if r.get("train/acc")]) == 2
    assert results["perf/step_ms"] > 0 and results["perf/images_per_s"] > 100


@pytest.mark.slow
def test_the_fast_trainer_preset_trains_without_a_sanity_check(make_cfg):
    cfg = make_cfg("trainer=fast", "trainer.log_every_n_steps=100")
    assert cfg.trainer.num_sanity_val_steps == 0 and cfg.trainer.benchmark is True
    assert 0.5 < train(cfg)["test/acc"] <= 1

"""Data: MNIST loads from the gzipped copy in the repo with no network, splits are seeded, and a missing
dataset fails with a paragraph naming the files and where they go."""

from __future__ import annotations

import gzip

import pytest
import torch
from torchvision import datasets as tvd

from cnnlab import REPO_ROOT
from cnnlab.data import DATASETS, ImageDataModule, load_split
from cnnlab.errors import CnnlabError
from helpers import copy_shipped_mnist

SHARED_RAW = REPO_ROOT.parent / "shared" / "data" / "MNIST" / "raw"


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails at once, as on a machine with no network."""
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    monkeypatch.setattr("torchvision.datasets.utils.urllib.request.urlopen", refuse)


def test_shipped_mnist_unpacks_on_first_use_without_network(tmp_path, no_network):
    root = copy_shipped_mnist(tmp_path)
    train = load_split(DATASETS.get("mnist"), root, train=True, transform=None, download=True)
    test = load_split(DATASETS.get("mnist"), root, train=False, transform=None, download=True)
    assert (len(train), len(test)) == (60_000, 10_000)
    raw = root / "MNIST" / "raw"
    unpacked = sorted(p.name for p in raw.iterdir() if not p.name.endswith(".gz"))
    assert unpacked == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                        "train-labels-idx1-ubyte"]
    for name in unpacked:  # byte-identical to the real files, where the shared copy is at hand
        with gzip.open(raw / f"{name}.gz") as packed:
            assert packed.read() == (raw / name).read_bytes()
        if (SHARED_RAW / name).exists():
            assert (raw / name).read_bytes() == (SHARED_RAW / name).read_bytes()
    assert train.targets.bincount().tolist()[:2] == [5923, 6742]  # the real MNIST class counts


def test_repo_ships_the_four_gzipped_files():
    raw = REPO_ROOT / "data" / "MNIST" / "raw"
    sizes = {p.name: p.stat().st_size for p in raw.glob("*.gz")}
    assert set(sizes) == {f"{n}.gz" for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    assert 10e6 < sum(sizes.values()) < 13e6


def test_missing_dataset_offline_names_the_files_and_folder(tmp_path, no_network):
    with pytest.raises(CnnlabError) as err:
        load_split(DATASETS.get("fashion_mnist"), tmp_path, train=True, transform=None, download=False)
    msg = str(err.value)
    assert f"Dataset 'fashion_mnist' is not in {tmp_path}" in msg
    assert str(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte") in msg
    assert "data.download=false" in msg and "data=mnist" in msg

    with pytest.raises(CnnlabError) as err:
        load_split(DATASETS.get("cifar10"), tmp_path, train=True, transform=None, download=True)
    msg = str(err.value)
    assert "Downloading it failed" in msg and "offline" in msg
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in msg


def test_unknown_dataset_name():
    with pytest.raises(CnnlabError, match=r"Unknown dataset 'mnsit' \(config key `data.name`\).*cifar10, "
                                          r"fashion_mnist, folder, kmnist, mnist, mnist_rot, svhn.*Did you mean"):
        ImageDataModule(name="mnsit")


def test_split_is_seeded_disjoint_and_reproducible():
    a, b = ImageDataModule(val_size=5000, split_seed=0), ImageDataModule(val_size=5000, split_seed=1)
    train_a, val_a = a.split_indices(60_000)
    torch.manual_seed(123)  # the global seed must not change the split
    assert a.split_indices(60_000) == (train_a, val_a)
    assert b.split_indices(60_000)[1] != val_a
    assert len(val_a) == 5000 and len(train_a) == 55_000 and not set(train_a) & set(val_a)
    with pytest.raises(CnnlabError, match=r"data.val_size must be between 1 and 59999.*got 60000"):
        ImageDataModule(val_size=60_000).split_indices(60_000)


def test_train_fraction_keeps_a_nested_seeded_share_and_the_same_validation_images():
    full_train, full_val = ImageDataModule(val_size=5000).split_indices(60_000)
    one_pct, val_1 = ImageDataModule(val_size=5000, train_fraction=0.01).split_indices(60_000)
    ten_pct, val_10 = ImageDataModule(val_size=5000, train_fraction=0.1).split_indices(60_000)
    assert (len(one_pct), len(ten_pct)) == (550, 5500)
    assert one_pct == ten_pct[:550] and ten_pct == full_train[:5500]  # 1 % is inside 10 % is inside 100 %
    assert val_1 == val_10 == full_val
    for bad in (0, 1.5, -0.1, "half", True):
        with pytest.raises(CnnlabError, match=r"data.train_fraction must be a number in \(0, 1\].*got"):
            ImageDataModule(train_fraction=bad)


def test_mnist_is_zero_padded_to_32_for_lenet5(tmp_path):
    root = copy_shipped_mnist(tmp_path)
    dm = ImageDataModule(data_dir=root, image_size=32, transforms={"normalize": False}, val_size=100)
    dm.prepare_data()
    dm.setup("fit")
    image, label = dm.val_set[0]
    original = tvd.MNIST(str(root), train=True).data[dm.val_set.indices[0]].float() / 255
    assert image.shape == (1, 32, 32)
    assert torch.allclose(image[0, 2:30, 2:30], original, atol=1e-6) and original.max() > 0.9
    assert image[0, :2].abs().sum() == 0 and image[0, :, 30:].abs().sum() == 0
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (128, 1, 32, 32) and batch[1].dtype == torch.int64

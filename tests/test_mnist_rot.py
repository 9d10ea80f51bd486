"""data=mnist_rot: rotated MNIST at the sizes Cohen & Welling 2016 report on, generated from the shipped MNIST,
deterministically, offline."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.data.datasets import DATASETS, RotatedMNIST, load_split
from helpers import copy_shipped_mnist


def test_mnist_rot_is_generated_at_the_paper_s_sizes_the_same_every_time(tmp_path):
    spec = DATASETS.get("mnist_rot")
    first = copy_shipped_mnist(tmp_path / "a")
    train = load_split(spec, first, train=True, transform=None, download=False)
    test = load_split(spec, first, train=False, transform=None, download=False)
    assert (len(train), len(test)) == (12_000, 50_000)
    assert train.data.dtype == torch.uint8 and train.data.shape[1:] == (28, 28)
    assert sorted(p.name for p in (first / "RotatedMNIST").iterdir()) == ["test-v1.pt", "train-v1.pt"]
    assert all(4_000 < n < 6_000 for n in test.targets.bincount().tolist())  # every digit, about 1/10 each
    again = load_split(spec, copy_shipped_mnist(tmp_path / "b"), train=False, transform=None, download=False)
    assert torch.equal(again.data, test.data) and torch.equal(again.targets, test.targets)
    image, label = train[0]
    assert image.size == (28, 28) and 0 <= label <= 9


def test_each_digit_is_an_mnist_digit_turned_by_its_own_angle(tmp_path):
    """Re-derive the first training digits from MNIST with the documented draw, and find them turned."""
    root = copy_shipped_mnist(tmp_path)
    rotated = load_split(DATASETS.get("mnist_rot"), root, train=True, transform=None, download=False)
    mnist = [load_split(DATASETS.get("mnist"), root, train=t, transform=None, download=False) for t in (True, False)]
    images = torch.cat([m.data for m in mnist])
    generator = torch.Generator().manual_seed(RotatedMNIST.SEED)
    chosen = torch.randperm(len(images), generator=generator)[:62_000]
    angles = torch.rand(62_000, generator=generator, dtype=torch.float64) * 360
    assert torch.equal(rotated.targets[:20], torch.cat([m.targets for m in mnist])[chosen[:20]])
    assert angles[:20].std() > 60  # spread over the circle, not one fixed angle
    for i in range(5):  # turning the result back by its angle recovers the original digit, up to resampling
        angle = math.radians(-float(angles[i]))
        theta = torch.tensor([[[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]]])
        back = F.grid_sample(rotated.data[i][None, None].float(), F.affine_grid(theta, [1, 1, 28, 28],
                             align_corners=False), align_corners=False)[0, 0]
        original = images[chosen[i]].float()
        assert torch.corrcoef(torch.stack([back.flatten(), original.flatten()]))[0, 1] > 0.9
        assert torch.corrcoef(torch.stack([rotated.data[i].float().flatten(), original.flatten()]))[0, 1] < 0.9 \
            or abs(float(angles[i]) % 360 - 180) > 150

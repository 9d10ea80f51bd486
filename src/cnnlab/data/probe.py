"""The fixed probe batch pictures and probes look at: one image per class, the same in every run."""

from __future__ import annotations

import weakref

import torch
from torch.utils.data import Dataset

from cnnlab.errors import CnnlabError


def probe_batch(dataset: Dataset, num_classes: int, scan: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """The first image of each class in `dataset` order (a validation split is seeded, so the batch is
    the same across runs that share data settings), sorted by class. Classes not met in the first
    `scan` images are left out."""
    found: dict[int, torch.Tensor] = {}
    for i in range(min(len(dataset), scan)):
        image, label = dataset[i]
        label = int(label)
        found.setdefault(label, image)
        if len(found) == num_classes:
            break
    if not found:
        raise CnnlabError("the probe batch for pictures needs at least one validation image, and the "
                          "validation set is empty (data.val_size must be at least 1).")
    labels = sorted(found)
    return torch.stack([found[k] for k in labels]), torch.tensor(labels)


_IMAGES: weakref.WeakKeyDictionary[Dataset, tuple[torch.Tensor, torch.Tensor]] = weakref.WeakKeyDictionary()


def probe_images(dataset: Dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` images of `dataset` (the validation split: never trained on) and their labels,
    as two tensors. Kept per dataset, so every probe of a run reads the images once."""
    x, y = _IMAGES.get(dataset, (None, None))
    if x is None or x.shape[0] < min(count, len(dataset)):
        n = min(count, len(dataset))
        if n < 1:
            raise CnnlabError("the probes need validation images, and the validation set is empty "
                              "(data.val_size must be at least 1).")
        if hasattr(dataset, "tensors"):  # a resident split hands over one batch
            x, y = dataset.tensors(0, n)
        else:
            items = [dataset[i] for i in range(n)]
            x = torch.stack([image for image, _ in items])
            y = torch.tensor([int(label) for _, label in items])
        _IMAGES[dataset] = (x, y)
    return x[:count], y[:count]

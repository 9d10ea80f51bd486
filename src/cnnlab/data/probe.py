"""The fixed probe batch pictures and probes look at: one image per class, the same in every run."""

from __future__ import annotations

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

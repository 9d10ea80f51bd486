"""The tensor-resident data path: a whole MNIST-sized split held as one uint8 tensor on the training device,
shuffled and batched without a DataLoader, transformed a batch at a time where it lives. Per-image Python
work (PIL, collate, worker processes) is what makes the DataLoader path slow for datasets this small."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from cnnlab.data.transforms import BatchTransform

#: `data.resident=auto` keeps a dataset resident up to this many bytes of uint8 images (SVHN: 0.3 GB)
AUTO_LIMIT_BYTES = 2 * 1024**3


def as_tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images N×C×H×W, int64 labels) of a torchvision dataset, read from its arrays when it keeps
    them (MNIST family, CIFAR, SVHN), else image by image."""
    data = getattr(dataset, "data", None)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = getattr(dataset, "labels", None)
    if data is not None and labels is not None:
        images = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
        if images.ndim == 3:  # MNIST family: N×H×W
            images = images.unsqueeze(1)
        elif images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):  # CIFAR: N×H×W×C
            images = images.permute(0, 3, 1, 2)
        return images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    pairs = [dataset[i] for i in range(len(dataset))]
    return (torch.stack([TF.pil_to_tensor(image) for image, _ in pairs]),
            torch.tensor([int(label) for _, label in pairs], dtype=torch.int64))


class ResidentSubset(Dataset):
    """Some images of a resident split, by index, with the eval transform: what pictures and probes read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: list[int] | torch.Tensor,
                 transform: BatchTransform) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self.indices = torch.as_tensor(indices, dtype=torch.int64, device=images.device)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.tensors(i, i + 1)
        return image[0], int(label[0])

    def tensors(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images start..stop-1 as one transformed CPU batch, without going image by image."""
        idx = self.indices[start:stop]
        return self.transform(self.images[idx]).cpu(), self.labels[idx].cpu()


class ResidentLoader:
    """Batches of a resident split, in a fresh order each epoch (seeded by the run seed and the epoch, so a
    resumed run sees the same order); under DDP each rank takes every world_size-th image. Lightning calls
    `loader.sampler.set_epoch(epoch)` at each epoch start, as it does for a DataLoader's sampler.

    It is resumable mid-epoch: Lightning stores `state_dict()` in each checkpoint and hands it back to
    `load_state_dict()` on resume, and the next iteration skips the batches already trained on. Each batch's
    augmentation draws from a generator of its own (seed, epoch, batch), so skipping needs no replay."""

    def __init__(self, subset: ResidentSubset, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, trained: Callable[[], int] | None = None) -> None:
        self.subset, self.batch_size, self.shuffle = subset, batch_size, shuffle
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.trained = trained  # batches of this epoch the trainer counts as trained (None: no trainer, no resume)
        self.epoch = 0
        self.sampler, self.batch_sampler = self, None  # what Lightning looks for on a DataLoader
        self._skip: tuple[int, int] | None = None  # (epoch, batches) to skip, from a checkpoint

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def dataset(self) -> ResidentSubset:
        return self.subset

    def state_dict(self) -> dict[str, int]:
        # The trainer knows which batches count as trained: not the one it holds fetched ahead (to know which is
        # the last), nor a step cut short by Ctrl-C.
        return {"epoch": self.epoch, "consumed": self.trained() if self.trained is not None else 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # Lightning makes the first iterator before it calls set_epoch: it must already be the saved epoch's.
        self.epoch = int(state["epoch"])
        self._skip = (self.epoch, int(state["consumed"]))

    def _per_rank(self) -> int:
        return math.ceil(len(self.subset) / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self._per_rank() / self.batch_size)

    def __iter__(self):
        device = self.subset.images.device
        epoch_seed = (self.seed * 100_003 + self.epoch) % 2**62
        order = self.subset.indices
        if self.shuffle:
            g = torch.Generator(device=device).manual_seed(epoch_seed)
            order = order[torch.randperm(len(order), generator=g, device=device)]
        if self.world_size > 1:  # pad by wrapping round, as DistributedSampler does, so ranks step together
            order = order.repeat(math.ceil(self._per_rank() * self.world_size / len(order)))
            order = order[: self._per_rank() * self.world_size][self.rank :: self.world_size]
        skip = self._skip[1] if self._skip and self._skip[0] == self.epoch else 0
        self._skip = None
        images, labels = self.subset.images, self.subset.labels
        for b in range(skip, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            g = torch.Generator(device=device).manual_seed((epoch_seed * 1_000_003 + b) % 2**62)
            yield self.subset.transform(images[idx], g), labels[idx]

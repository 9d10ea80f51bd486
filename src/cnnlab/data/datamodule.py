"""The Lightning datamodule: a seeded, reproducible train/val split of the train set, and the test set,
served from tensors on the training device (`data.resident`) or through DataLoaders."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.datasets import DATASETS, load_split
from cnnlab.data.resident import AUTO_LIMIT_BYTES, ResidentLoader, ResidentSubset, as_tensors
from cnnlab.data.transforms import BatchTransform, build_transform
from cnnlab.errors import CnnlabError


# Loader workers are forked where the OS allows: inside a joblib (loky) sweep job the default context
# cannot start them, and a fork also skips re-importing torch in every worker.
_WORKER_START = "fork" if "fork" in multiprocessing.get_all_start_methods() else None


class TransformedSubset(Dataset):
    """Some images of a dataset, with a transform of their own (augmentation for train, none for val)."""

    def __init__(self, base: Dataset, indices: list[int], transform: Callable) -> None:
        self.base, self.indices, self.transform = base, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.base[self.indices[i]]
        return self.transform(image), label


class ImageDataModule(L.LightningDataModule):
    def __init__(
        self,
        name: str = "mnist",
        data_dir: str | Path = "data",
        image_size: int | None = None,
        val_size: int = 5000,
        split_seed: int = 0,
        train_fraction: float = 1.0,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        num_workers: int = 0,
        download: bool = True,
        resident: bool | str = "auto",
        transforms: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.spec = DATASETS.get(name)
        self.data_dir = Path(data_dir)
        self.image_size = int(image_size or self.spec.image_size)
        if self.image_size < 1:
            raise CnnlabError(f"data.image_size must be a positive number of pixels, got {image_size}.")
        for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CnnlabError(f"data.{key} must be a positive integer, got {value!r}.")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise CnnlabError(f"data.num_workers must be a whole number >= 0 (0: load in the training process), "
                              f"got {num_workers!r}.")
        if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction <= 1:
            raise CnnlabError(f"data.train_fraction must be a number in (0, 1], the share of the training images "
                              f"to train on (0.1 = 10 %), got {train_fraction!r}.")
        if resident not in (True, False, "auto"):
            raise CnnlabError(f"data.resident must be true (hold the images as one tensor on the training device), "
                              f"false (DataLoader) or auto (resident when the images fit in "
                              f"{AUTO_LIMIT_BYTES / 1024**3:.0f} GB), got {resident!r}.")
        self.resident = resident
        #: where resident images go when no Trainer is attached (a Trainer's own device wins)
        self.device = torch.device("cpu")
        #: where the images are held when resident (set by setup); None on the DataLoader path
        self.resident_device: torch.device | None = None
        self._shuffle_seed = 0
        self.val_size = val_size
        self.train_fraction = float(train_fraction)
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.download = download
        self.transforms = dict(transforms or {})
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def class_names(self) -> list[str]:
        names = getattr(self.spec.cls, "classes", None)
        return [str(c) for c in names] if names else [str(i) for i in range(self.num_classes)]

    def _transform(self, augment: bool):
        return build_transform(self.transforms, self.spec, self.image_size, train=augment)

    def _load(self, train: bool, transform=None) -> Dataset:
        return load_split(self.spec, self.data_dir, train=train, transform=transform, download=self.download)

    def prepare_data(self) -> None:
        for train in (True, False):  # unpack or download once, on one process
            self._load(train)

    def split_indices(self, n: int) -> tuple[list[int], list[int]]:
        """The same seed always gives the same split, whatever the global seed. A `train_fraction` below 1
        keeps a prefix of the same shuffled order: 1 % of the images is inside 10 %, and the
        validation images never change."""
        if not 0 < self.val_size < n:
            raise CnnlabError(f"data.val_size must be between 1 and {n - 1} for '{self.spec.name}' "
                              f"({n} training images), got {self.val_size}.")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        train = order[self.val_size:]
        return train[: max(1, round(len(train) * self.train_fraction))], order[: self.val_size]

    def _resident_tensors(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The split as tensors on the training device, or None to use DataLoaders."""
        if self.resident is False:
            return None
        images, labels = as_tensors(dataset)
        if self.resident == "auto" and images.numel() > AUTO_LIMIT_BYTES:
            return None
        trainer = getattr(self, "trainer", None)
        device = trainer.strategy.root_device if trainer is not None else self.device
        if self.resident_device is None:  # drawn from the run's seeded RNG: the same seed, the same orders
            self._shuffle_seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        self.resident_device = device
        return images.to(device), labels.to(device)

    def _view(self, images: Dataset, tensors: tuple[torch.Tensor, torch.Tensor] | None, indices: list[int],
              augment: bool) -> Dataset:
        """Some images of a split: a resident view when `tensors` holds the split, else per-image transforms."""
        if tensors is not None:
            return ResidentSubset(*tensors, indices, BatchTransform(self.transforms, self.spec, self.image_size,
                                                                    train=augment))
        return TransformedSubset(images, indices, self._transform(augment))

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            images = self._load(True)  # one copy in memory; train and val views transform it differently
            train_idx, val_idx = self.split_indices(len(images))
            tensors = self._resident_tensors(images)
            self.train_set = self._view(images, tensors, train_idx, augment=True)
            self.val_set = self._view(images, tensors, val_idx, augment=False)
        if stage in (None, "test", "predict") and self.test_set is None:
            images = self._load(False)
            self.test_set = self._view(images, self._resident_tensors(images), list(range(len(images))), augment=False)

    def _loader(self, dataset: Dataset | None, batch_size: int, shuffle: bool) -> DataLoader | ResidentLoader:
        assert dataset is not None, "setup() must run before the dataloaders are asked for"
        if isinstance(dataset, ResidentSubset):
            trainer = getattr(self, "trainer", None)
            return ResidentLoader(dataset, batch_size, shuffle, seed=self._shuffle_seed,
                                  rank=trainer.global_rank if trainer else 0,
                                  world_size=trainer.world_size if trainer else 1,
                                  trained=(lambda: batches_trained(trainer)) if trainer and shuffle else None)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available(),
                          multiprocessing_context=_WORKER_START if self.num_workers > 0 else None)

    def train_dataloader(self) -> DataLoader | ResidentLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | ResidentLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader | ResidentLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)


def batches_trained(trainer) -> int:
    """Batches of the current epoch that a checkpoint saved now counts as trained: one whose optimizer step ran
    counts even before its on_train_batch_end hooks end (Lightning completes it on restore); one cut short
    (Ctrl-C mid-step) does not, and is trained again."""
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    return progress.processed if progress.processed == progress.started else progress.completed


def datamodule_from_config(cfg: Mapping[str, Any]) -> ImageDataModule:
    """The datamodule a resolved run config (a run dir's config.yaml) describes."""
    return ImageDataModule(data_dir=cfg["paths"]["data_dir"], transforms=cfg["transforms"], **cfg["data"])

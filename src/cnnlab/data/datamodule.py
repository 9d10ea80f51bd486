"""The Lightning datamodule: a seeded, reproducible train/val split of the train set (or an image folder's own
val/), and the test set, served from tensors on the training device (`data.resident`) or through DataLoaders."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from cnnlab.data.datasets import DATASETS, DatasetSpec, load_split
from cnnlab.data.folder import ImageFolderSource, open_folder, source_name
from cnnlab.data.resident import AUTO_LIMIT_BYTES, ResidentLoader, ResidentSubset, as_tensors
from cnnlab.data.transforms import BatchTransform, augmentations, build_transform
from cnnlab.errors import CnnlabError, UnknownNameError, unknown_name, whole_number
from cnnlab.lightning_compat import batches_done_this_epoch

#: `data=folder`: images in torchvision's ImageFolder layout, from `data.root` (cnnlab/data/folder.py)
FOLDER = "folder"


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
        val_size: int | float = 5000,
        split_seed: int = 0,
        train_fraction: float = 1.0,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        num_workers: int = 0,
        download: bool = True,
        resident: bool | str = "auto",
        transforms: Mapping[str, Any] | None = None,
        root: str | None = None,
        resize: int | None = None,
        cache: str = "auto",
        label: str | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        whole_number("data.batch_size", batch_size)
        whole_number("data.eval_batch_size", eval_batch_size)
        whole_number("data.num_workers", num_workers, least=0, meaning="0: load in the training process")
        if (isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float))
                or not 0 < train_fraction <= 1):
            raise CnnlabError(f"data.train_fraction must be a number in (0, 1], the share of the training images "
                              f"to train on (0.1 = 10 %), got {train_fraction!r}.")
        if resident not in (True, False, "auto"):
            raise CnnlabError(f"data.resident must be true (hold the images as one tensor on the training device), "
                              f"false (DataLoader) or auto (resident when the images fit in "
                              f"{AUTO_LIMIT_BYTES / 1024**3:.0f} GB), got {resident!r}.")
        #: the decoded image folder of `data=folder` (None for torchvision's datasets)
        self.folder: ImageFolderSource | None = None
        if name == FOLDER:
            self.folder = open_folder(root, self.data_dir, resize=resize, cache=cache)
            self.spec = DatasetSpec(FOLDER, ImageFolder, len(self.folder.classes), 3, self.folder.image_size,
                                    self.folder.mean, self.folder.std, classes=tuple(self.folder.classes))
        else:
            for key, value in (("root", root), ("resize", resize)):
                if value is not None:
                    raise CnnlabError(f"data.{key}={value} applies to image folders only (data=folder or "
                                      f"data=cifar10_jpeg), not to data.name={name}. Valid: data.{key}=null, or "
                                      "data=folder.")
            try:
                self.spec = DATASETS.get(name)
            except UnknownNameError:
                raise unknown_name("dataset", name, [*DATASETS.names(), FOLDER], "data.name") from None
        #: how reports and summaries name the dataset, e.g. "CIFAR-10 (JPEG copy)"
        self.label = label or (f"{source_name(self.folder.source)} (image folder)" if self.folder else self.spec.name)
        self.image_size = int(image_size or self.spec.image_size)
        if self.image_size < 1:
            raise CnnlabError(f"data.image_size must be a positive number of pixels, got {image_size}.")
        self.transforms = dict(transforms or {})
        augmentations(self.transforms, self.image_size)  # a bad affine, crop or flip fails here, before any trainer
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
        return self.spec.class_names

    def record(self) -> dict[str, Any]:
        """What the run's resolved config records about its data: the label, and for an image folder its source,
        the key of its contents and the cache the images came from."""
        return {"label": self.label, "name": self.spec.name, "classes": self.class_names,
                **(self.folder.record() if self.folder else {})}

    def _transform(self, augment: bool):
        return build_transform(self.transforms, self.spec, self.image_size, train=augment)

    def _load(self, split: str) -> Dataset:
        """A split ("train", "val" of an image folder that has one, "test") as a dataset of untransformed images."""
        if self.folder is not None:  # the decoded cache, or read image by image from the files (resident=false)
            return self.folder.splits[split] if self.resident is not False else self.folder.image_folder(split)
        return load_split(self.spec, self.data_dir, train=split == "train", transform=None, download=self.download)

    def prepare_data(self) -> None:
        if self.folder is None:
            for split in ("train", "test"):  # unpack or download once, on one process
                self._load(split)

    def split_indices(self, n: int, hold_out: bool = True) -> tuple[list[int], list[int]]:
        """The same seed always gives the same split, whatever the global seed. A `train_fraction` below 1
        keeps a prefix of the same shuffled order: 1 % of the images is inside 10 %, and the
        validation images never change. `val_size` is a count, or a share of the images when below 1;
        `hold_out=False` (an image folder with its own val/) keeps every image for training."""
        size = self.val_size if hold_out else 0
        if hold_out and isinstance(size, float) and 0 < size < 1:
            size = max(1, round(n * size))
        if hold_out and (isinstance(size, bool) or not isinstance(size, int) or not 0 < size < n):
            raise CnnlabError(f"data.val_size must be between 1 and {n - 1} for '{self.spec.name}' "
                              f"({n} training images), or a share of them in (0, 1) such as 0.1, got {self.val_size}.")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        train = order[size:]
        return train[: max(1, round(len(train) * self.train_fraction))], order[:size]

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
            images = self._load("train")  # one copy in memory; train and val views transform it differently
            tensors = self._resident_tensors(images)
            if self.folder is not None and self.folder.has_val:  # the folder's own val/ split
                train_idx, _ = self.split_indices(len(images), hold_out=False)
                val = self._load("val")
                self.train_set = self._view(images, tensors, train_idx, augment=True)
                self.val_set = self._view(val, self._resident_tensors(val), list(range(len(val))), augment=False)
            else:
                train_idx, val_idx = self.split_indices(len(images))
                self.train_set = self._view(images, tensors, train_idx, augment=True)
                self.val_set = self._view(images, tensors, val_idx, augment=False)
        if stage in (None, "test", "predict") and self.test_set is None:
            images = self._load("test")
            self.test_set = self._view(images, self._resident_tensors(images), list(range(len(images))), augment=False)

    def train_images(self, count: int) -> torch.Tensor:
        """The first `count` training images as one CPU batch, transformed as for evaluation (normalised, not
        augmented): what a data-dependent start looks at (fast_cnn's whitening layer)."""
        assert self.train_set is not None, "setup('fit') must run before the training images are asked for"
        subset = self.train_set
        if isinstance(subset, ResidentSubset):
            view = ResidentSubset(subset.images, subset.labels, subset.indices[:count],
                                  BatchTransform(self.transforms, self.spec, self.image_size, train=False))
            return view.tensors(0, len(view))[0]
        view = TransformedSubset(subset.base, subset.indices[:count], self._transform(False))
        return torch.stack([view[i][0] for i in range(len(view))])

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
    return batches_done_this_epoch(trainer)


def datamodule_from_config(cfg: Mapping[str, Any]) -> ImageDataModule:
    """The datamodule a resolved run config (a run dir's config.yaml) describes."""
    return ImageDataModule(data_dir=cfg["paths"]["data_dir"], transforms=cfg["transforms"], **cfg["data"])

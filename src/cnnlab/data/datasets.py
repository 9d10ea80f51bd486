"""Torchvision datasets by name. MNIST is shipped gzipped in the repo and unpacked on first use,
so the default run never downloads; other datasets download when online and fail clearly when not."""

from __future__ import annotations

import math
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import datasets as tvd
from torchvision.datasets.utils import extract_archive

from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """What a model and the transforms need to know about a dataset, before loading it."""

    name: str
    cls: type
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_arg: bool = False  # SVHN takes split="train"/"test" instead of train=True/False
    classes: tuple[str, ...] = ()  # class names, when the dataset class does not list them (image folders)

    @property
    def class_names(self) -> list[str]:
        names = self.classes or getattr(self.cls, "classes", None)
        return [str(c) for c in names] if names else [str(i) for i in range(self.num_classes)]

    def expected_files(self, root: Path) -> list[Path]:
        """The files torchvision looks for; named in the error when they are missing."""
        if self.cls is RotatedMNIST:  # generated from MNIST
            return DATASETS.get("mnist").expected_files(root)
        if issubclass(self.cls, tvd.MNIST):
            raw = root / self.cls.__name__ / "raw"
            return [raw / os.path.splitext(os.path.basename(url))[0] for url, _ in self.cls.resources]
        if issubclass(self.cls, tvd.CIFAR10):
            folder = root / self.cls.base_folder
            return [folder / f for f, _ in self.cls.train_list + self.cls.test_list]
        if self.cls is tvd.SVHN:
            return [root / spec[1] for key, spec in self.cls.split_list.items() if key in ("train", "test")]
        return [root]


class RotatedMNIST(tvd.MNIST):
    """MNIST-rot at the sizes of Larochelle et al. 2007, which Cohen & Welling 2016 report on: 12,000 training
    and 50,000 test digits, each turned by its own uniform random angle in [0°, 360°). Generated once,
    deterministically (a fixed seed draws the digits from MNIST's 70,000 and their angles; bilinear
    resampling, zero fill), from the MNIST that ships with cnnlab, and cached in <root>/RotatedMNIST/."""

    SIZES = {True: 12_000, False: 50_000}
    SEED = 2007
    VERSION = 1  # bump when the recipe changes: the cache is rebuilt

    def __init__(self, root: str, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        tvd.VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)
        self.train = train
        cache = Path(root) / "RotatedMNIST" / f"{'train' if train else 'test'}-v{self.VERSION}.pt"
        if not cache.exists():
            self._generate(Path(root), download)
        self.data, self.targets = torch.load(cache, weights_only=True)

    @classmethod
    def _generate(cls, root: Path, download: bool) -> None:
        mnist = DATASETS.get("mnist")
        splits = [load_split(mnist, root, train, None, download) for train in (True, False)]
        images = torch.cat([split.data for split in splits]).unsqueeze(1).float()
        labels = torch.cat([split.targets for split in splits])
        generator = torch.Generator().manual_seed(cls.SEED)
        chosen = torch.randperm(len(images), generator=generator)[:sum(cls.SIZES.values())]
        angles = torch.rand(len(chosen), generator=generator, dtype=torch.float64) * 2 * math.pi
        cos, sin = torch.cos(angles).float(), torch.sin(angles).float()
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                             torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1)
        grid = F.affine_grid(theta, [len(chosen), 1, 28, 28], align_corners=False)
        turned = F.grid_sample(images[chosen], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        turned = turned.round().clamp(0, 255).to(torch.uint8).squeeze(1)
        folder = root / "RotatedMNIST"
        folder.mkdir(parents=True, exist_ok=True)
        cut = cls.SIZES[True]
        for train, part in ((True, slice(0, cut)), (False, slice(cut, None))):
            target = folder / f"{'train' if train else 'test'}-v{cls.VERSION}.pt"
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as handle:
                torch.save((turned[part].clone(), labels[chosen][part].clone()), handle)
            os.replace(handle.name, target)  # atomically: parallel jobs may generate at once

    def _check_exists(self) -> bool:
        return True


DATASETS: Registry[DatasetSpec] = Registry("dataset", config_key="data.name")

for _spec in (
    DatasetSpec("mnist", tvd.MNIST, 10, 1, 28, (0.1307,), (0.3081,)),
    DatasetSpec("fashion_mnist", tvd.FashionMNIST, 10, 1, 28, (0.2860,), (0.3530,)),
    DatasetSpec("kmnist", tvd.KMNIST, 10, 1, 28, (0.1918,), (0.3483,)),
    DatasetSpec("mnist_rot", RotatedMNIST, 10, 1, 28, (0.1305,), (0.2899,)),
    DatasetSpec("cifar10", tvd.CIFAR10, 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    DatasetSpec("svhn", tvd.SVHN, 10, 3, 32, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), split_arg=True),
):
    DATASETS.register(_spec.name)(_spec)


def unpack_shipped(spec: DatasetSpec, root: Path) -> None:
    """Unpack `<root>/<Name>/raw/*.gz` shipped in the repo next to themselves, atomically (tests run in parallel)."""
    if not issubclass(spec.cls, tvd.MNIST):
        return
    for target in spec.expected_files(root):
        packed = target.with_name(target.name + ".gz")
        if target.exists() or not packed.exists():
            continue
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as tmp:
            try:
                extract_archive(str(packed), tmp)
            except (EOFError, OSError, zlib.error) as err:  # a truncated or damaged .gz
                raise _damaged_error(spec, packed, err) from None
            os.replace(Path(tmp) / target.name, target)


def _damaged_error(spec: DatasetSpec, where: Path, cause: BaseException) -> CnnlabError:
    first = (str(cause).strip().splitlines() or [""])[0][:200]
    return CnnlabError(f"Dataset '{spec.name}' at {where} is damaged ({type(cause).__name__}: {first}). Valid: "
                       f"whole files: delete {where.parent if where.is_file() else where} and copy or download them "
                       "again (data/MNIST/raw/*.gz ship with cnnlab), or point paths.data_dir at a good copy.")


def _missing_error(spec: DatasetSpec, root: Path, download: bool, cause: BaseException | None) -> CnnlabError:
    files = spec.expected_files(root)
    missing = [str(f) for f in files if not f.exists()] or [str(f) for f in files]
    tried = (f"Downloading it failed ({type(cause).__name__}: {str(cause).strip().splitlines()[0][:200]}), "
             "probably because this machine is offline. " if download and cause else
             "Download is off (data.download=false). ")
    return CnnlabError(
        f"Dataset '{spec.name}' is not in {root} and could not be fetched. {tried}"
        f"Missing: {', '.join(missing)}. Put those files there (from a machine that is online, e.g. run "
        f"`cnnlab-train data={spec.name}` there once and copy {root}), point paths.data_dir at a folder "
        f"that has them, or use data=mnist, which ships with cnnlab."
    )


def load_split(spec: DatasetSpec, root: str | Path, train: bool, transform: Callable | None,
               download: bool) -> Dataset:
    """The train or test split of a dataset, from disk if present, else downloaded if allowed."""
    root = Path(root)
    unpack_shipped(spec, root)
    kwargs = {"split": "train" if train else "test"} if spec.split_arg else {"train": train}

    def make(fetch: bool) -> Dataset:
        return spec.cls(str(root), transform=transform, download=fetch, **kwargs)

    try:
        return make(False)
    except (RuntimeError, ValueError, EOFError, OSError) as err:  # torchvision: "Dataset not found or corrupted"
        if issubclass(spec.cls, tvd.MNIST) and all(f.exists() for f in spec.expected_files(root)):
            raise _damaged_error(spec, spec.expected_files(root)[0].parent, err) from None  # there, but unreadable
        if not download:
            raise _missing_error(spec, root, download, None) from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        return make(True)
    except (RuntimeError, URLError, OSError) as err:
        raise _missing_error(spec, root, download, err) from None


__all__ = ["DATASETS", "DatasetSpec", "RotatedMNIST", "load_split", "unpack_shipped"]

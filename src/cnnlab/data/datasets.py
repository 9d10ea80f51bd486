"""Torchvision datasets by name. MNIST is shipped gzipped in the repo and unpacked on first use,
so the default run never downloads; other datasets download when online and fail clearly when not."""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

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
        if issubclass(self.cls, tvd.MNIST):
            raw = root / self.cls.__name__ / "raw"
            return [raw / os.path.splitext(os.path.basename(url))[0] for url, _ in self.cls.resources]
        if issubclass(self.cls, tvd.CIFAR10):
            folder = root / self.cls.base_folder
            return [folder / f for f, _ in self.cls.train_list + self.cls.test_list]
        if self.cls is tvd.SVHN:
            return [root / spec[1] for key, spec in self.cls.split_list.items() if key in ("train", "test")]
        return [root]


DATASETS: Registry[DatasetSpec] = Registry("dataset", config_key="data.name")

for _spec in (
    DatasetSpec("mnist", tvd.MNIST, 10, 1, 28, (0.1307,), (0.3081,)),
    DatasetSpec("fashion_mnist", tvd.FashionMNIST, 10, 1, 28, (0.2860,), (0.3530,)),
    DatasetSpec("kmnist", tvd.KMNIST, 10, 1, 28, (0.1918,), (0.3483,)),
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


__all__ = ["DATASETS", "DatasetSpec", "load_split", "unpack_shipped"]

"""Image folders in torchvision's `ImageFolder` layout (`train/<class>/*.jpg`, `test/<class>/...`, `val/` when
present), from a folder or an archive: CIFAR-10's JPEG copy, Imagenette, a user's own photos.

An archive is unpacked once into cnnlab's data folder (never next to a read-only source), atomically and under a
lock, so parallel sweep jobs that start together unpack it once. The images are decoded once (torchvision's
decoders, PIL for the formats those lack) into a cache file of uint8 tensors, with the per-channel mean and std of
the training split. The cache records a key of its source's contents: when the source changes the key changes and
the cache is decoded again, never reused stale."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from cnnlab.errors import CnnlabError, whole_number

#: bump when the cache's contents change meaning: every older cache is then decoded again
CACHE_FORMAT = 1
ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
SPLITS = ("train", "val", "test")
VALID_LAYOUT = ("<root>/train/<class>/<image> and <root>/test/<class>/<image> (val/ beside them is optional; "
                "with val/ and no test/, as Imagenette ships, val/ is the test split)")


def _say(text: str) -> None:
    print(f"cnnlab: {text}", flush=True)


# --- where things are -------------------------------------------------------------------------------------------

def archive_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in ARCHIVES if name.endswith(s)), None)


def source_name(path: Path) -> str:
    """A folder's name, an archive's without its ending: `cifar10-jpeg` for cifar10-jpeg.tar.gz."""
    return path.name[: len(path.name) - len(archive_suffix(path) or "")] or path.name


def source_key(source: Path) -> str:
    """A fingerprint of the source's contents: sha256 of an archive's bytes; of every file's path, size and
    modification time in a folder. It changes whenever the source does."""
    digest = hashlib.sha256()
    if source.is_file():
        with source.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    else:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(source)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One process at a time builds `target`; the others wait, then find it built."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        yield


def unpack(archive: Path, data_dir: Path, key: str) -> Path:
    """The archive unpacked under `data_dir/folders/`, once: into a temporary folder, then renamed into place."""
    target = data_dir / "folders" / f"{source_name(archive)}-{key[:12]}"
    if target.is_dir():
        return target
    with _locked(target):
        if target.is_dir():  # another job unpacked it while this one waited
            return target
        started = time.perf_counter()
        _say(f"unpacking {archive} into {target} (once) ...")
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CnnlabError(
                f"data.root={archive} is not a readable {archive_suffix(archive)} archive ({type(err).__name__}: "
                f"{str(err).strip()[:200]}). Valid: a whole .tar, .tar.gz, .tgz or .zip archive holding "
                f"{VALID_LAYOUT}, "
                "or the unpacked folder itself.") from None
        os.replace(tmp, target)
        _say(f"unpacked in {time.perf_counter() - started:.1f} s")
    return target


def layout_root(folder: Path, shown: Path) -> Path:
    """The folder holding train/: `folder` itself, or its one sub-folder (archives usually wrap their contents)."""
    if (folder / "train").is_dir():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subs) == 1 and (subs[0] / "train").is_dir():
        return subs[0]
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if not p.name.startswith("."))
    raise CnnlabError(
        f"data.root={shown} has no train/ folder (it holds: {', '.join(found[:8]) or 'nothing'}"
        f"{' ...' if len(found) > 8 else ''}). Valid: {VALID_LAYOUT}.")


# --- reading and checking the layout -----------------------------------------------------------------------------

@dataclass
class Layout:
    """The splits of a folder, each a list of (image file, class index), in ImageFolder's order."""

    root: Path
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]
    test_split: str  # the folder that serves as the test split: test/, or val/ when there is no test/

    @property
    def has_val(self) -> bool:
        return "val" in self.files and self.test_split != "val"


def _class_folders(split: Path) -> list[str]:
    return sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_layout(root: Path, shown: Path) -> Layout:
    """Check the layout and list its images; every problem is one paragraph naming the folder or file."""
    present = [s for s in SPLITS if (root / s).is_dir()]
    test_split = "test" if "test" in present else "val" if "val" in present else None
    if test_split is None:
        raise CnnlabError(f"data.root={shown} has train/ but no test/ (or val/) folder to test on, in {root}. "
                          f"Valid: {VALID_LAYOUT}.")
    classes = _class_folders(root / "train")
    if not classes:
        raise CnnlabError(f"data.root={shown}: {root / 'train'} holds no class folders. Valid: one sub-folder per "
                          f"class, named after it, e.g. train/cat/0001.jpg, train/dog/0001.jpg ({VALID_LAYOUT}).")
    index = {c: i for i, c in enumerate(classes)}
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in present:
        have = _class_folders(root / split)
        missing, extra = sorted(set(classes) - set(have)), sorted(set(have) - set(classes))
        if missing or extra:
            problem = (f"class folder(s) {', '.join(missing)} of train/ missing from {split}/" if missing else
                       f"class folder(s) {', '.join(extra)} in {split}/ but not in train/")
            raise CnnlabError(
                f"data.root={shown}: {problem} ({root / split}). Valid: every split has the same class folders "
                f"(train/ has: {', '.join(classes)}); add the missing folder with its images, or remove the class "
                "from every split.")
        files[split] = []
        for name in classes:
            folder = root / split / name
            entries = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
            not_images = [p for p in entries if not p.name.lower().endswith(IMG_EXTENSIONS)]
            if not_images:
                raise CnnlabError(
                    f"data.root={shown}: {not_images[0]} is not an image file ({len(not_images)} such file(s) in "
                    f"{split}/). Valid: only images in class folders, with one of the endings "
                    f"{', '.join(IMG_EXTENSIONS)}; move other files out.")
            if not entries:
                raise CnnlabError(
                    f"data.root={shown}: the class folder {folder} is empty. Valid: every class folder holds at "
                    f"least one image ({', '.join(IMG_EXTENSIONS)}); add images, or remove the class from every split.")
            files[split] += [(p, index[name]) for p in entries]
    return Layout(root, classes, files, test_split)


# --- decoding ------------------------------------------------------------------------------------------------------

def decode_file(path: str | Path) -> torch.Tensor:
    """An image file as a uint8 RGB tensor (3, H, W): torchvision's decoders (JPEG, PNG, WebP, GIF), PIL for the
    other formats ImageFolder accepts. A file that is not an image, or is cut short, raises a CnnlabError."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except RuntimeError as err:
        if "Unsupported image file" not in str(err):
            raise CnnlabError(f"{path} is a truncated or corrupt image ({str(err).strip().splitlines()[-1][-120:]}). "
                              "Valid: whole image files; replace or delete it.") from None
    try:
        with Image.open(path) as image:
            return v2.functional.pil_to_tensor(image.convert("RGB"))
    except UnidentifiedImageError:
        raise CnnlabError(f"{path} is not an image (neither torchvision nor PIL can read it). Valid: JPEG, PNG or "
                          f"another image format ({', '.join(IMG_EXTENSIONS)}); delete or replace it.") from None
    except OSError as err:
        raise CnnlabError(f"{path} is a truncated or corrupt image ({err}). Valid: whole image files; replace or "
                          "delete it.") from None


def fit_size(resize: int | None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """`data.resize`: the shorter side scaled to N, then the centre N×N (as ImageNet-style loaders do)."""
    if resize is None:
        return None
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(resize)])


def decode_split(split: str, files: list[tuple[Path, int]], resize: int | None, shown: Path,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of one split as (uint8 N×3×H×W, int64 labels); mixed sizes without `resize` are refused."""
    from rich.console import Console
    from rich.progress import Progress

    fit = fit_size(resize)
    images: list[torch.Tensor] = []
    sizes: Counter[tuple[int, int]] = Counter()
    example: dict[tuple[int, int], Path] = {}
    console = Console(stderr=True)
    with Progress(transient=True, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"decoding {split}/", total=len(files))
        for i, (path, _) in enumerate(files):
            image = decode_file(path)
            if fit is not None:
                image = fit(image)
            size = (image.shape[-2], image.shape[-1])
            sizes[size] += 1
            example.setdefault(size, path)
            images.append(image)
            if i % 2000 == 0:
                progress.update(task, completed=i)
    if len(sizes) > 1:
        (common, n), *others = sizes.most_common()
        rest = "; ".join(f"{h}×{w} ({k}, e.g. {example[(h, w)]})" for (h, w), k in others[:3])
        raise CnnlabError(
            f"data.root={shown}: the images of {split}/ differ in size: {common[0]}×{common[1]} ({n} images), {rest}. "
            f"Valid: one size for every image, or data.resize=N to scale each image's shorter side to N and keep "
            f"the centre N×N (e.g. data.resize={min(min(s) for s in sizes)}).")
    return torch.stack(images), torch.tensor([label for _, label in files], dtype=torch.int64)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units, accumulated in float64."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64) / 255
        total += x.sum((0, 2, 3))
        squares += (x * x).sum((0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (squares / n - mean * mean).clamp_min(0).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


# --- the cache -----------------------------------------------------------------------------------------------------

class CachedSplit(Dataset):
    """One split held as a uint8 tensor: `data` and `targets` are what the resident path reads."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
        self.data, self.targets, self.classes = images, labels, classes

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i], int(self.targets[i])


@dataclass
class ImageFolderSource:
    """A decoded image folder: what the datamodule needs to know and serve."""

    source: Path           # data.root as given
    content_key: str       # the fingerprint of the source's contents (source_key)
    key: str               # the cache's key: the content key, data.resize and the cache format
    cache: Path            # the cache file
    folder: Path | None    # the unpacked layout root, when it was needed (decoding, or the per-image path)
    classes: list[str]
    splits: dict[str, CachedSplit]  # train, test, and val when the layout has one
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None
    data_dir: Path

    @property
    def image_size(self) -> int:
        return int(self.splits["train"].data.shape[-1])

    @property
    def has_val(self) -> bool:
        return "val" in self.splits

    def record(self) -> dict[str, str | None]:
        """What a run's config records about where its images came from."""
        return {"source": str(self.source), "content_key": self.content_key, "cache_key": self.key,
                "cache": str(self.cache), "folder": str(self.folder) if self.folder else None}

    def image_folder(self, split: str) -> ImageFolder:
        """The split read image by image from its files (torchvision's ImageFolder, the same decoder and resize as
        the cache): what `data.resident=false` trains from."""
        if self.folder is None:
            self.folder = _layout_folder(self.source, self.data_dir, self.content_key)
        layout_split = "val" if split == "test" and not (self.folder / "test").is_dir() else split
        return ImageFolder(str(self.folder / layout_split), loader=decode_file, transform=fit_size(self.resize))


def _layout_folder(source: Path, data_dir: Path, key: str) -> Path:
    folder = unpack(source, data_dir, key) if source.is_file() else source
    return layout_root(folder, source)


def _cache_key(content_key: str, resize: int | None) -> str:
    return hashlib.sha256(f"{content_key}|resize={resize}|format={CACHE_FORMAT}".encode()).hexdigest()


def _read_cache(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 — unreadable: treated as absent by cnnlab's own cache, refused when named
        return None


def open_folder(root: str | Path | None, data_dir: str | Path, resize: int | None = None,
                cache: str | Path = "auto") -> ImageFolderSource:
    """`data=folder data.root=...`: the decoded images, from the cache when it matches the source."""
    if root in (None, ""):
        raise CnnlabError("data=folder needs data.root=<folder or archive>. Valid: a folder or a .tar, .tar.gz, .tgz "
                          f"or .zip archive holding {VALID_LAYOUT}.")
    if resize is not None:
        whole_number("data.resize", resize, meaning="pixels: shorter side scaled to N, centre N×N kept",
                     valid="Or null to keep the images' own size.")
    source, data_dir = Path(str(root)).expanduser(), Path(data_dir)
    if not source.exists():
        raise CnnlabError(f"data.root={root} does not exist. Valid: a folder or a .tar, .tar.gz, .tgz or .zip "
                          f"archive holding {VALID_LAYOUT}.")
    if source.is_file() and archive_suffix(source) is None:
        raise CnnlabError(f"data.root={root} is a file but not an archive cnnlab reads. Valid: a folder, or an "
                          f"archive ending in {', '.join(ARCHIVES)}, holding {VALID_LAYOUT}.")
    if source.is_file() and not (tarfile.is_tarfile(source) or zipfile.is_zipfile(source)):
        raise CnnlabError(f"data.root={root} is not an archive: its contents are neither tar nor zip, whatever its "
                          f"name says. Valid: a whole {archive_suffix(source)} archive holding {VALID_LAYOUT}, or "
                          "the unpacked folder.")
    content_key = source_key(source)
    key = _cache_key(content_key, resize)
    named = str(cache) != "auto"
    if named:
        cache_path = Path(str(cache)).expanduser()
    else:
        where = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
        sized = "" if resize is None else f"-{resize}px"
        cache_path = data_dir / "folders" / "cache" / f"{source_name(source)}-{where}{sized}.pt"
    saved = _read_cache(cache_path) if cache_path.is_file() else None
    if named and cache_path.exists() and (saved is None or saved.get("key") != key):
        what = ("was decoded from an older version of the source, or another source" if saved is not None
                else "is not a cnnlab image cache")
        raise CnnlabError(
            f"data.cache={cache} {what} (data.root={root}, data.resize={resize}): its images are not this source's. "
            f"Valid: delete {cache_path} (cnnlab then decodes the source into it again), data.cache=auto (cnnlab's "
            "own cache, rebuilt whenever the source changes), or the data.root it was made from.")
    folder = None
    if saved is None or saved.get("key") != key:
        with _locked(cache_path):
            saved = _read_cache(cache_path) if cache_path.is_file() else None
            if saved is None or saved.get("key") != key:
                if saved is not None:
                    _say(f"the cache {cache_path} was decoded from an older version of {source}; decoding it again")
                folder = _layout_folder(source, data_dir, content_key)
                saved = _build_cache(folder, source, key, resize, cache_path)
    splits = {name: CachedSplit(s["images"], s["labels"], saved["classes"]) for name, s in saved["splits"].items()}
    return ImageFolderSource(source, content_key, key, cache_path, folder, list(saved["classes"]), splits,
                             tuple(saved["mean"]), tuple(saved["std"]), resize, data_dir)


def _build_cache(folder: Path, source: Path, key: str, resize: int | None, cache_path: Path) -> dict:
    layout = read_layout(folder, source)
    started = time.perf_counter()
    total = sum(len(f) for f in layout.files.values())
    _say(f"decoding {total:,} images of {source} into {cache_path} (once; later runs start from the cache) ...")
    splits = {}
    for split, files in layout.files.items():
        name = "test" if split == layout.test_split else split
        images, labels = decode_split(split, files, resize, source)
        splits[name] = {"images": images, "labels": labels}
    sizes = {tuple(s["images"].shape[-2:]) for s in splits.values()}
    if len(sizes) > 1:
        listed = ", ".join(f"{h}×{w}" for h, w in sorted(sizes))
        raise CnnlabError(f"data.root={source}: the splits' images differ in size ({listed}). "
                          "Valid: one size for every image, or data.resize=N to bring each to N×N.")
    (height, width), = sizes
    if height != width:
        raise CnnlabError(f"data.root={source}: the images are {height}×{width} (height × width), and cnnlab's models "
                          f"take square images. Valid: data.resize=N to scale each image's shorter side to N and keep "
                          f"the centre N×N (e.g. data.resize={min(height, width)}).")
    mean, std = channel_stats(splits["train"]["images"])
    saved = {"format": CACHE_FORMAT, "key": key, "source": str(source), "classes": layout.classes,
             "splits": splits, "mean": list(mean), "std": list(std)}
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
    torch.save(saved, tmp)
    os.replace(tmp, cache_path)
    _say(f"decoded in {time.perf_counter() - started:.1f} s; mean {mean}, std {std} (training split)")
    return saved


__all__ = ["CachedSplit", "ImageFolderSource", "decode_file", "open_folder", "source_key", "source_name"]

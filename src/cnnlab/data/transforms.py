"""Transforms from the `transforms` config group: size to the model's input, augment, normalise. Two forms of
the same steps: per image (the DataLoader path) and per batch on the training device (the resident path).

Each augmentation is a key of the group, registered in AUGMENTATIONS (`transforms.affine`, `.crop`, `.flip`), applied
in the order registered; `transforms.normalize` is the one other key. Any other key is refused by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from cnnlab.data.datasets import DatasetSpec
from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.registry import Registry

#: config key → (its value, the image size) → a per-image torchvision step, or None when the value turns it off
AUGMENTATIONS: Registry[Callable[[Any, int], v2.Transform | None]] = Registry("transforms key")
#: the keys of the transforms group that are not augmentations
OTHER_KEYS = ("normalize",)


def resize_to(native: int, size: int) -> list[v2.Transform]:
    """Zero-pad up to `size` (as LeCun padded MNIST 28→32 for LeNet-5); resize down when smaller."""
    if size == native:
        return []
    if size > native:
        left = (size - native) // 2
        return [v2.Pad([left, left, size - native - left, size - native - left])]
    return [v2.Resize(size, antialias=True)]


@AUGMENTATIONS.register("affine")
def random_affine(affine: Any, size: int) -> v2.RandomAffine | None:
    """`transforms.affine` as torchvision's RandomAffine, which also checks and normalises the options."""
    if not affine:
        return None
    try:
        return v2.RandomAffine(**affine)
    except (TypeError, ValueError) as err:
        raise CnnlabError(
            f"transforms.affine={dict(affine)} is not valid for RandomAffine ({err}). Valid keys: degrees "
            "(e.g. 15), translate (fractions, e.g. [0.1, 0.1]), scale (e.g. [0.9, 1.1]), shear."
        ) from None


PADDING_MODES = ("reflect", "constant", "edge", "symmetric")


@AUGMENTATIONS.register("crop")
def random_crop(given: Any, size: int) -> v2.RandomCrop | None:
    """`transforms.crop` ({padding, padding_mode}) as torchvision's RandomCrop of the image's own size."""
    if not given:
        return None
    crop = dict(given)
    padding, mode = crop.pop("padding", 4), crop.pop("padding_mode", "reflect")
    if crop or isinstance(padding, bool) or not isinstance(padding, int) or padding < 0 or mode not in PADDING_MODES:
        raise CnnlabError(
            f"transforms.crop={dict(given)} is not valid. Valid keys: padding (whole pixels >= 0 added on "
            f"every side before a random crop of the image's own size, e.g. 4) and padding_mode (one of "
            f"{', '.join(PADDING_MODES)})."
        )
    if mode == "reflect" and padding >= size:
        raise CnnlabError(f"transforms.crop.padding={padding} is too large for reflect padding of a {size}×{size} "
                          f"image. Valid: at most {size - 1}, or padding_mode=constant.")
    return v2.RandomCrop(size, padding=padding, padding_mode=mode)


@AUGMENTATIONS.register("flip")
def random_flip(given: Any, size: int) -> v2.RandomHorizontalFlip | None:
    """`transforms.flip` (the probability of a left-right flip) as torchvision's RandomHorizontalFlip."""
    p = given or 0
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise CnnlabError(f"transforms.flip={given!r} is not valid. Valid: the probability that a training "
                          "image is flipped left to right, a number in [0, 1] (0.5 is usual, 0 or null: never).")
    return v2.RandomHorizontalFlip(p) if p > 0 else None


def augmentations(cfg: Mapping[str, Any], image_size: int) -> dict[str, v2.Transform]:
    """The random steps a training image goes through, by key, in the order registered (affine, crop, flip);
    a key of the group that is neither an augmentation nor `normalize` is refused by name."""
    for key in cfg:
        if key not in AUGMENTATIONS and key not in OTHER_KEYS:
            raise unknown_name("transforms key", key, [*AUGMENTATIONS.registered(), *OTHER_KEYS],
                               f"transforms.{key}")
    steps = {name: AUGMENTATIONS.get(name)(cfg.get(name), image_size) for name in AUGMENTATIONS.registered()}
    return {name: step for name, step in steps.items() if step is not None}


def build_transform(cfg: Mapping[str, Any], spec: DatasetSpec, image_size: int, train: bool) -> v2.Compose:
    """`cfg` is the transforms group: {normalize: bool, affine: null | {degrees, translate, scale},
    crop: null | {padding, padding_mode}, flip: probability}."""
    steps: list[v2.Transform] = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    steps += resize_to(spec.image_size, image_size)
    if train:
        steps += augmentations(cfg, image_size).values()
    if cfg.get("normalize", False):
        steps.append(v2.Normalize(spec.mean, spec.std))
    return v2.Compose(steps)


class BatchAffine:
    """RandomAffine with parameters drawn per image of a batch (torchvision's draws one set per call),
    sampled as torchvision does (nearest neighbour, zero fill, whole-pixel shifts) from a given generator."""

    def __init__(self, spec: v2.RandomAffine) -> None:
        self.degrees, self.translate, self.scale, self.shear = spec.degrees, spec.translate, spec.scale, spec.shear

    @staticmethod
    def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
        return torch.rand(n, generator=g, device=device) * (high - low) + low

    def params(self, n: int, height: int, width: int, g: torch.Generator, device) -> dict[str, torch.Tensor]:
        zeros = torch.zeros(n, device=device)
        angle = self._uniform(n, *self.degrees, g, device)
        tx, ty = zeros, zeros
        if self.translate is not None:
            dx, dy = self.translate[0] * width, self.translate[1] * height
            tx = torch.round(self._uniform(n, -dx, dx, g, device))
            ty = torch.round(self._uniform(n, -dy, dy, g, device))
        scale = self._uniform(n, *self.scale, g, device) if self.scale is not None else zeros + 1
        shear_x = shear_y = zeros
        if self.shear is not None:
            shear_x = self._uniform(n, self.shear[0], self.shear[1], g, device)
            if len(self.shear) == 4:
                shear_y = self._uniform(n, self.shear[2], self.shear[3], g, device)
        return {"angle": angle, "tx": tx, "ty": ty, "scale": scale, "shear_x": shear_x, "shear_y": shear_y}

    @staticmethod
    def apply(x: torch.Tensor, angle, tx, ty, scale, shear_x, shear_y) -> torch.Tensor:
        """Each image i moved by its own parameters (degrees, pixels), about the image centre."""
        n, _, h, w = x.shape
        rot, sx, sy = (torch.deg2rad(v.to(torch.float64)) for v in (angle, shear_x, shear_y))
        # The forward map is rotation · shear (determinant 1) · scale; the grid needs its inverse.
        a = torch.cos(rot - sy) / torch.cos(sy)
        b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
        c = torch.sin(rot - sy) / torch.cos(sy)
        d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
        s = scale.to(torch.float64)
        inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / s[:, None, None]
        shift = -(inv @ torch.stack([tx, ty], -1).to(torch.float64)[..., None])[..., 0]
        # From centred pixel coordinates to grid_sample's [-1, 1] (align_corners=False) on both sides.
        half = torch.tensor([w / 2, h / 2], dtype=torch.float64, device=x.device)
        theta = torch.cat([inv * half[None, None, :] / half[None, :, None], (shift / half)[..., None]], -1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.apply(x, **self.params(x.shape[0], x.shape[-2], x.shape[-1], g, x.device))


def _source_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Where padded position i (which may lie outside 0..n-1) reads from, for each torchvision padding mode;
    for `constant` out-of-range positions are clamped here and blanked by the caller."""
    if mode == "reflect":  # ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...
        i = i.abs()
        return torch.where(i > n - 1, 2 * (n - 1) - i, i)
    if mode == "symmetric":  # ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
        i = torch.where(i < 0, -i - 1, i)
        return torch.where(i > n - 1, 2 * n - 1 - i, i)
    return i.clamp(0, n - 1)  # edge; constant (blanked by the caller)


class BatchCropFlip:
    """RandomCrop (with padding) and RandomHorizontalFlip with draws per image of a batch, as one gather: each
    output pixel reads the input pixel torchvision's pad → crop → flip would put there."""

    def __init__(self, crop: v2.RandomCrop | None, flip: v2.RandomHorizontalFlip | None) -> None:
        self.padding = crop.padding[0] if crop is not None else 0
        self.mode = crop.padding_mode if crop is not None else "constant"
        self.cropping, self.flip_p = crop is not None, flip.p if flip is not None else 0.0

    def params(self, n: int, height: int, width: int, g: torch.Generator, device) -> dict[str, torch.Tensor]:
        """top, left: the crop's corner in the padded image (torchvision: 0..2·padding); flip: a bool each."""
        span = 2 * self.padding + 1
        zeros = torch.zeros(n, dtype=torch.long, device=device)
        top = torch.randint(0, span, (n,), generator=g, device=device) if self.cropping else zeros
        left = torch.randint(0, span, (n,), generator=g, device=device) if self.cropping else zeros
        flip = torch.rand(n, generator=g, device=device) < self.flip_p
        return {"top": top, "left": left, "flip": flip}

    def apply(self, x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        rows = top[:, None] - self.padding + torch.arange(h, device=x.device)  # (n, h) in unpadded coordinates
        cols = left[:, None] - self.padding + torch.arange(w, device=x.device)
        cols = torch.where(flip[:, None], cols.flip(-1), cols)
        images = torch.arange(n, device=x.device)[:, None, None, None]
        channels = torch.arange(c, device=x.device)[None, :, None, None]
        out = x[images, channels, _source_index(rows, h, self.mode)[:, None, :, None],
                _source_index(cols, w, self.mode)[:, None, None, :]]
        if self.mode == "constant" and self.padding:
            inside = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
            out = out * inside.to(out.dtype)
        return out

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.apply(x, **self.params(x.shape[0], x.shape[-2], x.shape[-1], g, x.device))


class BatchTransform:
    """The per-image steps of `build_transform`, on a uint8 batch (N, C, H, W) where it lives."""

    def __init__(self, cfg: Mapping[str, Any], spec: DatasetSpec, image_size: int, train: bool) -> None:
        resize = resize_to(spec.image_size, image_size)
        self.resize = v2.Compose(resize) if resize else None
        chosen = augmentations(cfg, image_size)
        affine, crop, flip = chosen.get("affine"), chosen.get("crop"), chosen.get("flip")
        self.affine = BatchAffine(affine) if train and affine is not None else None
        self.crop_flip = BatchCropFlip(crop, flip) if train and (crop or flip) else None
        self.normalize = cfg.get("normalize", False)
        self.mean, self.std = spec.mean, spec.std

    def __call__(self, images: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = images.to(torch.float32) / 255
        if self.resize is not None:
            x = self.resize(x)
        if self.affine is not None:
            x = self.affine(x, g)
        if self.crop_flip is not None:
            x = self.crop_flip(x, g)
        if self.normalize:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x


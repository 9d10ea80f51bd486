"""Transforms from the `transforms` config group: size to the model's input, augment, normalise. Two forms of
the same steps: per image (the DataLoader path) and per batch on the training device (the resident path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from cnnlab.data.datasets import DatasetSpec
from cnnlab.errors import CnnlabError


def resize_to(native: int, size: int) -> list[v2.Transform]:
    """Zero-pad up to `size` (as LeCun padded MNIST 28→32 for LeNet-5); resize down when smaller."""
    if size == native:
        return []
    if size > native:
        left = (size - native) // 2
        return [v2.Pad([left, left, size - native - left, size - native - left])]
    return [v2.Resize(size, antialias=True)]


def random_affine(cfg: Mapping[str, Any]) -> v2.RandomAffine | None:
    """`transforms.affine` as torchvision's RandomAffine, which also checks and normalises the options."""
    affine = cfg.get("affine")
    if not affine:
        return None
    try:
        return v2.RandomAffine(**affine)
    except (TypeError, ValueError) as err:
        raise CnnlabError(
            f"transforms.affine={dict(affine)} is not valid for RandomAffine ({err}). Valid keys: degrees "
            "(e.g. 15), translate (fractions, e.g. [0.1, 0.1]), scale (e.g. [0.9, 1.1]), shear."
        ) from None


def build_transform(cfg: Mapping[str, Any], spec: DatasetSpec, image_size: int, train: bool) -> v2.Compose:
    """`cfg` is the transforms group: {normalize: bool, affine: null | {degrees, translate, scale}}."""
    steps: list[v2.Transform] = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    steps += resize_to(spec.image_size, image_size)
    affine = random_affine(cfg)
    if train and affine is not None:
        steps.append(affine)
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


class BatchTransform:
    """The per-image steps of `build_transform`, on a uint8 batch (N, C, H, W) where it lives."""

    def __init__(self, cfg: Mapping[str, Any], spec: DatasetSpec, image_size: int, train: bool) -> None:
        resize = resize_to(spec.image_size, image_size)
        self.resize = v2.Compose(resize) if resize else None
        affine = random_affine(cfg) if train else None
        self.affine = BatchAffine(affine) if affine is not None else None
        self.normalize = cfg.get("normalize", False)
        self.mean, self.std = spec.mean, spec.std

    def __call__(self, images: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = images.to(torch.float32) / 255
        if self.resize is not None:
            x = self.resize(x)
        if self.affine is not None:
            x = self.affine(x, g)
        if self.normalize:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x


"""Per-image transforms from the `transforms` config group: size to the model's input, augment, normalise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
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


def build_transform(cfg: Mapping[str, Any], spec: DatasetSpec, image_size: int, train: bool) -> v2.Compose:
    """`cfg` is the transforms group: {normalize: bool, affine: null | {degrees, translate, scale}}."""
    steps: list[v2.Transform] = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    steps += resize_to(spec.image_size, image_size)
    affine = cfg.get("affine")
    if train and affine:
        try:
            steps.append(v2.RandomAffine(**affine))
        except (TypeError, ValueError) as err:
            raise CnnlabError(
                f"transforms.affine={dict(affine)} is not valid for RandomAffine ({err}). Valid keys: degrees "
                "(e.g. 15), translate (fractions, e.g. [0.1, 0.1]), scale (e.g. [0.9, 1.1]), shear."
            ) from None
    if cfg.get("normalize", False):
        steps.append(v2.Normalize(spec.mean, spec.std))
    return v2.Compose(steps)

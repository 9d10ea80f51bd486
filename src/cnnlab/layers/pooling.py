"""Pooling by name, so `pooling=avg` swaps the downsampling in every stage of a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from cnnlab.registry import Registry, split_spec

# Each factory takes (channels, kernel_size, stride); channels matters for learned or depthwise poolings.
POOLINGS: Registry[Callable[..., nn.Module]] = Registry("pooling", config_key="pooling.name")

POOLINGS.register("max")(lambda channels, kernel_size=2, stride=None: nn.MaxPool2d(kernel_size, stride))
POOLINGS.register("avg")(lambda channels, kernel_size=2, stride=None: nn.AvgPool2d(kernel_size, stride))
# Keep the resolution: the ablation that shows what downsampling buys.
POOLINGS.register("none")(lambda channels, kernel_size=2, stride=None: nn.Identity())


def make_pooling(spec: str | Mapping[str, Any], channels: int) -> nn.Module:
    """Build a pooling layer from a name or a `{name: ..., kernel_size: 2, stride: 2}` config."""
    name, options = split_spec(spec, "pooling")
    return POOLINGS.build(name, channels, **options)

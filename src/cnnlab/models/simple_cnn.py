"""The ablation workhorse: `depth` conv blocks of `width`·2^i channels (capped at 8·width), then a linear head."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnnlab.layers import ConvBlock
from cnnlab.models.base import Spec, StagedModel, positive_int
from cnnlab.models.registry import register_model


@register_model("simple_cnn")
class SimpleCNN(StagedModel):
    """'Same'-padded convs so only pooling shrinks the map; global average pool before the classifier.

    Subclasses keep this topology and change one thing: `front` (stages before the conv stack) or `make_conv`.
    """

    model_name = "simple_cnn"

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: Spec = "max",
        activation: Spec = "relu",
        depth: int | None = None,
        width: int | None = None,
        kernel_size: int = 3,
        norm: str | None = None,
    ) -> None:
        name = self.model_name
        depth = positive_int(name, "depth", depth, 3)
        width = positive_int(name, "width", width, 32)
        kernel_size = positive_int(name, "kernel_size", kernel_size, 3)
        super().__init__(name, (in_channels, image_size, image_size))
        self.front(in_channels, pooling=pooling, activation=activation)
        channels = in_channels
        for i in range(depth):
            out = width * 2 ** min(i, 3)
            conv = self.make_conv(channels, out, kernel_size, norm)
            self.add_stage(f"block{i + 1}", ConvBlock(channels, out, kernel_size, padding=kernel_size // 2, norm=norm,
                                                      activation=activation, pooling=pooling, conv=conv))
            channels = out
        self.add_stage("gap", nn.Sequential(OrderedDict(gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())))
        self.add_stage("logits", nn.Linear(channels, num_classes))

    def front(self, in_channels: int, *, pooling: Any, activation: Any) -> None:
        """Stages that run before the conv stack (none here)."""

    def make_conv(self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None) -> nn.Module | None:
        """The conv of each block; None means a plain weight-shared `nn.Conv2d`."""
        return None

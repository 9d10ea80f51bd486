"""The ablation workhorse: `depth` conv blocks of `width`·2^i channels (capped at 8·width), then a linear head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import ConvBlock
from cnnlab.models.base import StagedModel
from cnnlab.models.registry import register_model


@register_model("simple_cnn")
class SimpleCNN(StagedModel):
    """'Same'-padded convs so only pooling shrinks the map; global average pool before the classifier."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: str | Mapping[str, Any] = "max",
        activation: str | Mapping[str, Any] = "relu",
        depth: int | None = 3,
        width: int | None = 32,
        kernel_size: int = 3,
        norm: str | None = None,
    ) -> None:
        depth = 3 if depth is None else depth
        width = 32 if width is None else width
        for knob, value in (("depth", depth), ("width", width), ("kernel_size", kernel_size)):
            if not isinstance(value, int) or value < 1:
                raise CnnlabError(f"model 'simple_cnn' needs model.{knob} to be a positive integer, got {value!r}.")
        super().__init__("simple_cnn", (in_channels, image_size, image_size))
        channels = in_channels
        for i in range(depth):
            out = width * 2 ** min(i, 3)
            self.add_stage(f"block{i + 1}", ConvBlock(channels, out, kernel_size, padding=kernel_size // 2,
                                                      norm=norm, activation=activation, pooling=pooling))
            channels = out
        self.add_stage("gap", nn.Sequential(OrderedDict(gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())))
        self.add_stage("logits", nn.Linear(channels, num_classes))

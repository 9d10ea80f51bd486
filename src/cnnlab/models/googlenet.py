"""GoogLeNet (Szegedy et al. 2015), small-image variant: the paper's nine inception modules with its channel
table scaled by width/64, batch norm after each conv (as torchvision's GoogLeNet), a 3×3 stem in place of the
7×7 stride-2 stem and its two poolings, and 3×3 stride-2 poolings after 3b and 4e (28 → 14 → 7 on MNIST)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.layers import ConvBlock, make_pooling
from cnnlab.models.base import Spec, StagedModel, positive_int, reject_knob
from cnnlab.models.registry import register_model

# Paper Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj (at width 64).
INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class Inception(nn.Module):
    """Four parallel branches (1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 stride-1 pool → 1×1), concatenated."""

    def __init__(self, in_channels: int, table: tuple[int, ...], *, pooling: Spec, activation: Spec) -> None:
        super().__init__()
        c1, r3, c3, r5, c5, proj = table

        def conv(cin: int, cout: int, k: int) -> ConvBlock:
            return ConvBlock(cin, cout, k, padding=k // 2, norm="batch", activation=activation, pooling=None)

        self.branch1 = conv(in_channels, c1, 1)
        self.branch3 = nn.Sequential(OrderedDict(reduce=conv(in_channels, r3, 1), conv=conv(r3, c3, 3)))
        self.branch5 = nn.Sequential(OrderedDict(reduce=conv(in_channels, r5, 1), conv=conv(r5, c5, 5)))
        self.branch_pool = nn.Sequential(OrderedDict(
            pool=make_pooling(pooling, in_channels, 3, 1, 1, fixed_window=True), proj=conv(in_channels, proj, 1)))
        self.out_channels = c1 + c3 + c5 + proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


@register_model("googlenet")
class GoogLeNet(StagedModel):
    """Stages `stem`, `inception3a`, `inception3b`, `pool3`, `inception4a`..`4e`, `pool4`, `inception5a`, `5b`,
    `head` (global average pool + dropout), `logits`."""

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
        dropout: float = 0.4,
    ) -> None:
        reject_knob("googlenet", "depth", depth, "it has the paper's nine inception modules")
        width = positive_int("googlenet", "width", width, 32)
        super().__init__("googlenet", (in_channels, image_size, image_size))
        scale = width / 64

        def scaled(table: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(max(1, round(c * scale)) for c in table)

        channels = max(1, round(192 * scale))
        self.add_stage("stem", ConvBlock(in_channels, channels, 3, padding=1, norm="batch", activation=activation,
                                         pooling=None))
        for name, table in INCEPTIONS.items():
            block = Inception(channels, scaled(table), pooling=pooling, activation=activation)
            self.add_stage(f"inception{name}", block)
            channels = block.out_channels
            if name in ("3b", "4e"):
                self.add_stage(f"pool{name[0]}", make_pooling(pooling, channels, 3, 2, 1))
        self.add_stage("head", nn.Sequential(OrderedDict(
            gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), dropout=nn.Dropout(dropout))))
        self.add_stage("logits", nn.Linear(channels, num_classes))

"""LeNet-5 exactly as the seed articles describe it (LeCun et al. 1998, with their 120 → 100 → 10 head)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.layers import ConvBlock, make_activation
from cnnlab.models.base import Spec, StagedModel, reject_knob
from cnnlab.models.registry import register_model


@register_model("lenet5")
class LeNet5(StagedModel):
    """32×32 input, six 5×5 filters, 2×2 pool, sixteen 5×5 filters, 2×2 pool, FC 120 → 100 → classes.

    Pooling and activation are swappable; depth and width are fixed by the seed.
    """

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
    ) -> None:
        reject_knob("lenet5", "depth", depth, "it has the seed's two conv blocks")
        reject_knob("lenet5", "width", width, "it has the seed's 6 and 16 filters")
        super().__init__("lenet5", (in_channels, image_size, image_size))
        self.add_stage("block1", ConvBlock(in_channels, 6, 5, activation=activation, pooling=pooling))
        c, h, w = self.add_stage("block2", ConvBlock(6, 16, 5, activation=activation, pooling=pooling))
        self.add_stage("fc1", nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), linear=nn.Linear(c * h * w, 120), act=make_activation(activation))))
        self.add_stage("fc2", nn.Sequential(OrderedDict(linear=nn.Linear(120, 100), act=make_activation(activation))))
        self.add_stage("logits", nn.Linear(100, num_classes))

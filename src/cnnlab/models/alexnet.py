"""AlexNet (Krizhevsky et al. 2012), small-image variant: five convs with overlapping 3×3 stride-2 pooling after
conv1, conv2 and conv5, then two dropout FC layers. For 28–32 px input the 11×11 stride-4 first conv becomes
5×5 stride 1 and the FC layers 16·width wide (1024 at the default width, 4096 in the paper); LRN is left out,
as in torchvision's AlexNet."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.layers import ConvBlock, make_activation
from cnnlab.models.base import Spec, StagedModel, positive_int, reject_knob
from cnnlab.models.registry import register_model


@register_model("alexnet")
class AlexNet(StagedModel):
    """`width` is conv1's channel count; the others keep the architecture's ratios."""

    model_name = "alexnet"
    default_width = 64
    channel_ratios = (1, 3, 6, 4, 4)  # torchvision's 64-192-384-256-256 at width 64
    kernels = (5, 5, 3, 3, 3)  # 11×11/4 and 5×5 at 224 px; conv1 shrinks to 5×5 stride 1 at 28–32 px
    pool_window = (3, 2, 0)  # overlapping pooling, as in the paper

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
        dropout: float = 0.5,
    ) -> None:
        name = self.model_name
        reject_knob(name, "depth", depth, "it has the paper's five conv and three FC layers")
        width = positive_int(name, "width", width, self.default_width)
        super().__init__(name, (in_channels, image_size, image_size))
        channels = [round(r * width) for r in self.channel_ratios]
        previous = in_channels
        for i, (out, kernel) in enumerate(zip(channels, self.kernels), start=1):
            self.add_stage(f"conv{i}", ConvBlock(
                previous, out, kernel, padding=kernel // 2, activation=activation,
                pooling=pooling if i in (1, 2, 5) else None, pool_window=self.pool_window))
            previous = out
        c, h, w = self.stage_shapes()["conv5"]
        hidden = 16 * width
        for i, features in ((6, c * h * w), (7, hidden)):
            self.add_stage(f"fc{i}", nn.Sequential(OrderedDict(
                flatten=nn.Flatten(), dropout=nn.Dropout(dropout), linear=nn.Linear(features, hidden),
                act=make_activation(activation))))
        self.add_stage("logits", nn.Linear(hidden, num_classes))

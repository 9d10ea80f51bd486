"""simple_cnn with p4 group convolutions (Cohen & Welling 2016's P4CNN against its plain Z2CNN): the first
block lifts the image onto the group of 90° rotations, later blocks convolve on it, and a max over the rotations
before the global average pool makes the prediction invariant to 90° turns of the input, exactly."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import ConvBlock
from cnnlab.layers.p4 import ROTATIONS, P4Conv, RotationPool
from cnnlab.models.base import Spec, StagedModel, positive_int
from cnnlab.models.registry import register_model


@register_model("p4cnn")
class P4CNN(StagedModel):
    """`depth` p4 blocks of `width`·2^i group channels (capped at 8·width; each holds 4 rotations, so width 16
    has about the parameters of simple_cnn's width 32), 'same' padding, rotation pool, global average pool."""

    model_name = "p4cnn"

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
        width = positive_int(name, "width", width, 16)
        kernel_size = positive_int(name, "kernel_size", kernel_size, 3)
        if kernel_size % 2 == 0:
            raise CnnlabError(f"model 'p4cnn' needs an odd model.kernel_size (rotations keep 'same' padding "
                              f"centred only then), got {kernel_size}. Valid: 3, 5, 7, ...")
        if norm is not None:
            raise CnnlabError(f"model 'p4cnn' takes model.norm=null only, got {norm!r}: a batch norm per folded "
                              "channel would treat the 4 rotations of one channel apart and break equivariance.")
        super().__init__(name, (in_channels, image_size, image_size))
        channels = in_channels
        for i in range(depth):
            out = width * 2 ** min(i, 3)
            conv = P4Conv(channels, out, kernel_size, lift=i == 0, padding=kernel_size // 2)
            self.add_stage(f"block{i + 1}", ConvBlock(channels, ROTATIONS * out, kernel_size, activation=activation,
                                                      pooling=pooling, conv=conv))
            channels = out
        self.add_stage("rotation_pool", RotationPool())
        self.add_stage("gap", nn.Sequential(OrderedDict(gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())))
        self.add_stage("logits", nn.Linear(channels, num_classes))

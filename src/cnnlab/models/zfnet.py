"""ZF Net (Zeiler & Fergus 2014): AlexNet with the smaller first-layer filters their visualisations called for
(7×7 stride 2 instead of 11×11 stride 4 at 224 px; 3×3 stride 1 instead of AlexNet's 5×5 here) and the paper's
96-256-384-384-256 channels."""

from __future__ import annotations

from cnnlab.models.alexnet import AlexNet
from cnnlab.models.registry import register_model


@register_model("zfnet")
class ZFNet(AlexNet):
    model_name = "zfnet"
    default_width = 96
    channel_ratios = (1, 8 / 3, 4, 4, 8 / 3)
    kernels = (3, 5, 3, 3, 3)

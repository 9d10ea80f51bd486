"""ResNets (He et al. 2016), small-image variants built from torchvision's `BasicBlock`.

`resnet18`: the CIFAR-style ResNet-18 (3×3 stem, no stem pooling, four stages of two blocks, 64-512 channels).
`resnet20`: the paper's CIFAR ResNet-(6n+2) (three stages of n blocks, 16-64 channels); `depth` picks n.
Each stage after the first starts with the chosen pooling; the native one, `stride`, is a learned 2×2 stride-2
conv, which stands in for the paper's stride-2 first conv. Blocks that change width get a 1×1 conv + BN shortcut.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models.resnet import BasicBlock

from cnnlab.errors import CnnlabError
from cnnlab.layers import ConvBlock, make_pooling, replace_activations
from cnnlab.models.base import Spec, StagedModel, positive_int, reject_knob
from cnnlab.models.registry import register_model


def residual_block(in_channels: int, out_channels: int, activation: Spec) -> BasicBlock:
    shortcut = None
    if in_channels != out_channels:
        shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
    block = BasicBlock(in_channels, out_channels, downsample=shortcut)
    replace_activations(block, (nn.ReLU,), activation)
    return block


class ResNet(StagedModel):
    """Stages `stem`, `layer1`.., `gap`, `logits`; each `layerN` is (pool →) its residual blocks."""

    def __init__(self, name: str, widths: list[int], blocks: int, *, num_classes: int, in_channels: int,
                 image_size: int, pooling: Spec, activation: Spec) -> None:
        super().__init__(name, (in_channels, image_size, image_size))
        self.add_stage("stem", ConvBlock(in_channels, widths[0], 3, padding=1, norm="batch",
                                         activation=activation, pooling=None))
        previous = widths[0]
        for i, out in enumerate(widths, start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 1:
                layers["pool"] = make_pooling(pooling, previous, 2, 2)
            for j in range(1, blocks + 1):
                layers[f"block{j}"] = residual_block(previous, out, activation)
                previous = out
            self.add_stage(f"layer{i}", nn.Sequential(layers))
        self.add_stage("gap", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        self.add_stage("logits", nn.Linear(previous, num_classes))


@register_model("resnet18")
class ResNet18(ResNet):
    """Four stages of two blocks at width·(1, 2, 4, 8) channels (64 → 512 at the default width)."""

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, pooling: Spec = "stride",
                 activation: Spec = "relu", depth: int | None = None, width: int | None = None) -> None:
        reject_knob("resnet18", "depth", depth, "the name fixes its 18 layers; model=resnet20 takes model.depth")
        width = positive_int("resnet18", "width", width, 64)
        super().__init__("resnet18", [width, 2 * width, 4 * width, 8 * width], 2, num_classes=num_classes,
                         in_channels=in_channels, image_size=image_size, pooling=pooling, activation=activation)


@register_model("resnet20")
class ResNet20(ResNet):
    """Three stages of n = (depth − 2) / 6 blocks at width·(1, 2, 4) channels (16 → 64 at the default width)."""

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, pooling: Spec = "stride",
                 activation: Spec = "relu", depth: int | None = None, width: int | None = None) -> None:
        depth = positive_int("resnet20", "depth", depth, 20)
        if depth < 8 or (depth - 2) % 6:
            raise CnnlabError(f"model 'resnet20' needs model.depth = 6n+2 (the paper's CIFAR ResNets), got {depth}. "
                              f"Valid: 8, 14, 20, 32, 44, 56, 110, ...")
        width = positive_int("resnet20", "width", width, 16)
        super().__init__("resnet20", [width, 2 * width, 4 * width], (depth - 2) // 6, num_classes=num_classes,
                         in_channels=in_channels, image_size=image_size, pooling=pooling, activation=activation)

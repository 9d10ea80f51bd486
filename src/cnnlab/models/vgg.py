"""VGG (Simonyan & Zisserman 2015), small-image variant: stacks of 3×3 'same' convs, a pooling after each of the
five stacks, then FC 8·width → 8·width (512 at the default width, 4096 in the paper) with dropout. Batch norm is
on by default (`norm: batch`), as in the CIFAR variants: plain VGG-16 rarely trains from scratch without it.
Five poolings need 32 px input, so conf/model/vgg*.yaml pads MNIST to 32."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.layers import ConvBlock, make_activation
from cnnlab.models.base import Spec, StagedModel, positive_int, reject_knob
from cnnlab.models.registry import register_model

# Convs per stack; stack i has width·(1, 2, 4, 8, 8)[i] channels.
STACKS = {"vgg11": (1, 1, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
STACK_RATIOS = (1, 2, 4, 8, 8)


class VGG(StagedModel):
    """Stages `block1`..`block5` (one per conv stack, pooling at its end), `fc6`, `fc7`, `logits`."""

    model_name = "vgg"

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
        norm: str | None = "batch",
        dropout: float = 0.5,
    ) -> None:
        name = self.model_name
        reject_knob(name, "depth", depth, f"the name fixes its {name[3:]} weight layers; pick model=vgg11 or vgg16")
        width = positive_int(name, "width", width, 64)
        super().__init__(name, (in_channels, image_size, image_size))
        previous = in_channels
        for i, (convs, ratio) in enumerate(zip(STACKS[name], STACK_RATIOS), start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for j in range(1, convs + 1):
                layers[f"conv{j}"] = ConvBlock(previous, width * ratio, 3, padding=1, norm=norm,
                                               activation=activation, pooling=pooling if j == convs else None)
                previous = width * ratio
            self.add_stage(f"block{i}", nn.Sequential(layers))
        c, h, w = self.stage_shapes()["block5"]
        hidden = 8 * width
        for i, features in ((6, c * h * w), (7, hidden)):
            self.add_stage(f"fc{i}", nn.Sequential(OrderedDict(
                flatten=nn.Flatten(), linear=nn.Linear(features, hidden), act=make_activation(activation),
                dropout=nn.Dropout(dropout))))
        self.add_stage("logits", nn.Linear(hidden, num_classes))


@register_model("vgg11")
class VGG11(VGG):
    model_name = "vgg11"


@register_model("vgg16")
class VGG16(VGG):
    model_name = "vgg16"

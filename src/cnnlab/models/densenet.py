"""DenseNet-BC (Huang et al. 2017), the small CIFAR variant: a 3×3 stem of 2k channels, three dense blocks of
bottleneck layers (BN-act-1×1 conv to 4k, BN-act-3×3 conv to k) joined by transitions that halve the channels
(compression 0.5) and pool. `width` is the growth rate k (12), `depth` the paper's L = 6n + 4 (40 → n = 6).
Dense blocks and transitions are torchvision's; their hard-coded ReLU and average pooling are swapped."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models import DenseNet as TorchvisionDenseNet

from cnnlab.errors import CnnlabError
from cnnlab.layers import make_activation, make_pooling, replace_activations
from cnnlab.models.base import Spec, StagedModel, positive_int
from cnnlab.models.registry import register_model


@register_model("densenet")
class DenseNet(StagedModel):
    """Stages `stem`, `denseblock1`, `transition1`, `denseblock2`, `transition2`, `denseblock3`, `head`, `logits`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: Spec = "avg",
        activation: Spec = "relu",
        depth: int | None = None,
        width: int | None = None,
    ) -> None:
        depth = positive_int("densenet", "depth", depth, 40)
        if depth < 10 or (depth - 4) % 6:
            raise CnnlabError(f"model 'densenet' needs model.depth = 6n+4 (DenseNet-BC), got {depth}. "
                              f"Valid: 10, 16, 22, 40, 100, ...")
        growth = positive_int("densenet", "width", width, 12)
        n = (depth - 4) // 6
        reference = TorchvisionDenseNet(growth_rate=growth, block_config=(n, n, n), num_init_features=2 * growth,
                                        bn_size=4, num_classes=num_classes)
        super().__init__("densenet", (in_channels, image_size, image_size))
        self.add_stage("stem", nn.Conv2d(in_channels, 2 * growth, 3, padding=1, bias=False))
        for name, module in reference.features.named_children():
            if name.startswith("transition"):
                module.pool = make_pooling(pooling, module.conv.out_channels, 2, 2)
            if name.startswith(("denseblock", "transition")):
                replace_activations(module, (nn.ReLU,), activation)
                self.add_stage(name, module)
        channels = reference.classifier.in_features
        self.add_stage("head", nn.Sequential(OrderedDict(
            norm=nn.BatchNorm2d(channels), act=make_activation(activation), gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten())))
        self.add_stage("logits", nn.Linear(channels, num_classes))

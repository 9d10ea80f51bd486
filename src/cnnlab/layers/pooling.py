"""Pooling by name, so `pooling=avg` swaps the downsampling at every place a model downsamples.

A model says where it pools and with what window (LeNet-5 2×2 stride 2, AlexNet 3×3 stride 2, an inception
branch 3×3 stride 1 padded); the pooling config picks the operator, and may override the window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.registry import Registry, Spec, split_spec

# Each factory takes (channels, kernel_size, stride, padding); channels matters for learned or depthwise poolings.
POOLINGS: Registry[Callable[..., nn.Module]] = Registry("pooling", config_key="pooling.name")


class SumPool2d(nn.AvgPool2d):
    """Sum over the window: average pooling times the window area (LeCun 1998's subsampling before its gain)."""

    def __init__(self, kernel_size: int, stride: int, padding: int = 0) -> None:
        super().__init__(kernel_size, stride, padding, divisor_override=1)


class LpPool2d(nn.Module):
    """Lp-norm pooling with zero padding, which `nn.LPPool2d` lacks (an inception branch needs 'same' output)."""

    def __init__(self, p: float, kernel_size: int, stride: int, padding: int = 0) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d(padding) if padding else nn.Identity()
        self.pool = nn.LPPool2d(p, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pad(x))


class StridedConvPool(nn.Conv2d):
    """A learned channels→channels conv with the pooling window and stride (all-convolutional nets,
    Springenberg et al. 2015): the network learns its own downsampling."""

    def __init__(self, channels: int, kernel_size: int, stride: int, padding: int = 0) -> None:
        super().__init__(channels, channels, kernel_size, stride, padding)


class BlurMaxPool2d(nn.Module):
    """Anti-aliased max pooling (Zhang 2019): dense max (stride 1), then a binomial low-pass filter applied
    per channel while subsampling, so a one-pixel shift changes the output far less than plain max pooling."""

    def __init__(self, channels: int, kernel_size: int, stride: int, padding: int = 0) -> None:
        super().__init__()
        self.max = nn.MaxPool2d(kernel_size, 1, padding)
        self.stride = stride
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / taps.sum() ** 2
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.max(x)
        if self.stride == 1:  # nothing is subsampled, so nothing aliases
            return x
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.conv2d(x, self.kernel, stride=self.stride, groups=x.shape[1])


POOLINGS.register("max")(lambda channels, kernel_size, stride, padding=0: nn.MaxPool2d(kernel_size, stride, padding))
POOLINGS.register("avg")(lambda channels, kernel_size, stride, padding=0: nn.AvgPool2d(kernel_size, stride, padding))
POOLINGS.register("sum")(lambda channels, kernel_size, stride, padding=0: SumPool2d(kernel_size, stride, padding))
POOLINGS.register("lp")(
    lambda channels, kernel_size, stride, padding=0, p=2.0: LpPool2d(p, kernel_size, stride, padding))
POOLINGS.register("stride")(StridedConvPool)
POOLINGS.register("blur")(BlurMaxPool2d)
# Keep the resolution: the ablation that shows what downsampling buys.
POOLINGS.register("none")(lambda channels, kernel_size, stride, padding=0: nn.Identity())


def make_pooling(
    spec: Spec,
    channels: int,
    kernel_size: int = 2,
    stride: int | None = None,
    padding: int = 0,
    *,
    fixed_window: bool = False,
) -> nn.Module:
    """Build the pooling `spec` names (a name or `{name: ..., **options}`) for a model's pooling site.

    The site's window (kernel_size, stride, padding) is the architecture's; non-null values in `spec` override it,
    except at a `fixed_window` site (e.g. an inception branch, whose output must keep the input's size).
    """
    name, options = split_spec(spec, "pooling")
    options = {key: value for key, value in options.items() if value is not None}
    window = {"kernel_size": kernel_size, "stride": kernel_size if stride is None else stride, "padding": padding}
    overrides = {key: options.pop(key) for key in list(options) if key in window}
    if not fixed_window:
        window.update(overrides)
    module = POOLINGS.build(name, channels, **window, **options)
    module.pooling_name = name  # lets tests and probes find every pooling site, whatever its type
    if name != "none":
        k, s = window["kernel_size"], window["stride"]
        module.layer_label = f"{name} pool {k}×{k} stride {s}"
    return module

"""The conv block every model reuses: conv → optional norm → activation → pooling."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers.activation import make_activation
from cnnlab.layers.pooling import make_pooling
from cnnlab.registry import Spec


def make_norm(norm: str | None, channels: int) -> nn.Module | None:
    if norm is None:
        return None
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    raise CnnlabError(f"Unknown norm '{norm}'. Valid norm values: batch, or null for none.")


class ConvBlock(nn.Sequential):
    """Named sub-layers (`conv`, `norm`, `act`, `pool`) so pictures and probes can find each one.

    `conv` may be a prebuilt conv-like layer (e.g. a locally connected one) in place of `nn.Conv2d`;
    `pool_window` is the architecture's pooling window (kernel_size, stride, padding).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        activation: Spec,
        pooling: Spec | None,
        stride: int = 1,
        padding: int | str = 0,
        norm: str | None = None,
        pool_window: tuple[int, int | None, int] = (2, None, 0),
        conv: nn.Module | None = None,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = conv if conv is not None else nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=norm is None)
        norm_layer = make_norm(norm, out_channels)
        if norm_layer is not None:
            layers["norm"] = norm_layer
        layers["act"] = make_activation(activation)
        if pooling is not None:
            layers["pool"] = make_pooling(pooling, out_channels, *pool_window)
        super().__init__(layers)

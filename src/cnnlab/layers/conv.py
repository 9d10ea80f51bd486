"""The conv block every model reuses: conv → optional norm → activation → pooling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers.activation import make_activation
from cnnlab.layers.pooling import make_pooling


class ConvBlock(nn.Sequential):
    """Named sub-layers (`conv`, `norm`, `act`, `pool`) so pictures and probes can find each one."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        activation: str | Mapping[str, Any],
        pooling: str | Mapping[str, Any] | None,
        stride: int = 1,
        padding: int | str = 0,
        norm: str | None = None,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=norm is None)
        if norm == "batch":
            layers["norm"] = nn.BatchNorm2d(out_channels)
        elif norm is not None:
            raise CnnlabError(f"Unknown norm '{norm}'. Valid norm values: batch, or null for none.")
        layers["act"] = make_activation(activation)
        if pooling is not None:
            layers["pool"] = make_pooling(pooling, out_channels)
        super().__init__(layers)

"""simple_cnn without weight sharing: the same blocks, shapes and receptive fields, but a separate filter bank
at every position, so the model has many times the parameters (the weight-sharing ablation)."""

from __future__ import annotations

from torch import nn

from cnnlab.layers.locally_connected import LocallyConnected2d
from cnnlab.models.registry import register_model
from cnnlab.models.simple_cnn import SimpleCNN


@register_model("locally_connected")
class LocallyConnectedCNN(SimpleCNN):
    """Every conv of simple_cnn becomes a `LocallyConnected2d` on the map size it receives."""

    model_name = "locally_connected"

    def make_conv(self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None) -> nn.Module:
        _, height, width = self._trace.shape[1:]
        return LocallyConnected2d(in_channels, out_channels, kernel_size, (height, width),
                                  padding=kernel_size // 2, bias=norm is None)

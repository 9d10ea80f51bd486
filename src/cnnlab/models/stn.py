"""A spatial transformer (Jaderberg et al. 2015) in front of simple_cnn: a small localisation net predicts an
affine transform per image and resamples the input with it, so the CNN sees digits rotated and scaled back."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.layers import ConvBlock, make_activation
from cnnlab.models.registry import register_model
from cnnlab.models.simple_cnn import SimpleCNN


def make_localiser(in_channels: int, *, pooling: Any, activation: Any) -> nn.Sequential:
    """Conv 7×7 → pool → conv 5×5 → pool → flatten, as in the PyTorch STN tutorial's MNIST net."""
    return nn.Sequential(OrderedDict(
        block1=ConvBlock(in_channels, 8, 7, activation=activation, pooling=pooling),
        block2=ConvBlock(8, 10, 5, activation=activation, pooling=pooling),
        flatten=nn.Flatten(),
    ))


class SpatialTransformer(nn.Module):
    """Localisation features → FC → 6 affine numbers, started at the identity transform; then resampling."""

    def __init__(self, localise: nn.Module, features: int, *, activation: Any) -> None:
        super().__init__()
        self.localise = localise
        self.regress = nn.Sequential(OrderedDict(
            fc=nn.Linear(features, 32), act=make_activation(activation), theta=nn.Linear(32, 6)))
        nn.init.zeros_(self.regress.theta.weight)
        with torch.no_grad():
            self.regress.theta.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.regress(self.localise(x)).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


@register_model("stn")
class STN(SimpleCNN):
    """Stage `transform` is the resampled input image (what the CNN sees); then simple_cnn's stages."""

    model_name = "stn"

    def front(self, in_channels: int, *, pooling: Any, activation: Any) -> None:
        localise = make_localiser(in_channels, pooling=pooling, activation=activation)
        (features,) = self.probe_shape("transform", localise)
        self.add_stage("transform", SpatialTransformer(localise, features, activation=activation))

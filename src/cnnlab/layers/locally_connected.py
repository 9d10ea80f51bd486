"""A convolution without weight sharing: every output position has its own filter bank.

PyTorch has no such layer; `nn.Unfold` gives the patches and one einsum applies the per-position filters.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LocallyConnected2d(nn.Module):
    """Same receptive field, stride and output shape as `nn.Conv2d(in, out, k, stride, padding)` on an
    `input_size` map, but (H_out·W_out)× the weights: the control for what weight sharing buys."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, input_size: tuple[int, int],
                 stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.out_channels = out_channels
        self.output_size = tuple((n + 2 * padding - kernel_size) // stride + 1 for n in input_size)
        positions = self.output_size[0] * self.output_size[1]
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1 / math.sqrt(fan_in)  # nn.Conv2d's default init range
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, positions).uniform_(-bound, bound)) if bias else None
        self.layer_label = f"locally connected {kernel_size}×{kernel_size} stride {stride}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = nn.functional.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        out = torch.einsum("bkl,lok->bol", patches, self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(x.shape[0], self.out_channels, *self.output_size)

    def extra_repr(self) -> str:
        in_channels = self.weight.shape[2] // self.kernel_size ** 2
        return (f"{in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_size={self.output_size}")

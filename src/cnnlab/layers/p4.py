"""Group convolutions on p4, the group of translations and 90° rotations (Cohen & Welling 2016, "Group
Equivariant Convolutional Networks"), written as ordinary convs on a folded layout: a p4 feature map of C
channels is a (B, 4·C, H, W) tensor whose channel 4·c + r holds channel c at rotation r. Rotating the input by
90° then rotates every p4 map by 90° and shifts its rotation axis by one, exactly (for odd kernels with 'same'
padding); `rotation_pool` (max over the 4 rotations) makes the maps invariant to the turn.

Both layers are `nn.Conv2d`s holding only the free weights, so filter pictures, parameter counts and the
receptive-field tracer see them as convs; `forward` expands them into the 4 rotated copies."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROTATIONS = 4


class P4Conv(nn.Conv2d):
    """`lift=True`: Z² → p4 (an image of `in_channels` to a p4 map of `out_channels`). `lift=False`: p4 → p4
    (a p4 map of `in_channels` channels, i.e. 4·in_channels folded, to one of `out_channels`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, lift: bool, padding: int = 0,
                 bias: bool = True) -> None:
        folded_in = in_channels if lift else ROTATIONS * in_channels
        super().__init__(folded_in, out_channels, kernel_size, padding=padding, bias=bias)
        self.lift = lift
        self.layer_label = f"p4 {'lifting ' if lift else ''}conv {kernel_size}×{kernel_size}"

    def expanded_weight(self) -> torch.Tensor:
        """(4·out, in', k, k): for each output rotation r the filters turned by r·90°, and for p4 inputs their
        rotation axis shifted by r, as the group's action on a filter on p4 requires."""
        w = self.weight
        if self.lift:
            turned = [torch.rot90(w, r, dims=(-2, -1)) for r in range(ROTATIONS)]
        else:
            out, folded, k, _ = w.shape
            w = w.view(out, folded // ROTATIONS, ROTATIONS, k, k)
            turned = [torch.rot90(torch.roll(w, r, dims=2), r, dims=(-2, -1)).reshape(out, folded, k, k)
                      for r in range(ROTATIONS)]
        return torch.stack(turned, dim=1).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.repeat_interleave(ROTATIONS)
        return F.conv2d(x, self.expanded_weight(), bias, self.stride, self.padding, self.dilation)


class RotationPool(nn.Module):
    """Max over the 4 rotations of a folded p4 map: (B, 4·C, H, W) → (B, C, H, W)."""

    layer_label = "rotation max-pool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, folded, h, w = x.shape
        return x.view(b, folded // ROTATIONS, ROTATIONS, h, w).amax(dim=2)

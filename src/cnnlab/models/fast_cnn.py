"""The fast CIFAR-10 net of the speed-run line of work (Page 2018, "How to train your ResNet"; tysam-code's
hlb-CIFAR10; Jordan 2024, airbench): a frozen patch-whitening conv, then `depth` groups of
(conv → pool → batch norm → activation → conv → batch norm → activation), a global max pool and a scaled
linear head. What makes it fast is in the training recipe as much as the net (`experiment=cifar10_fast`).

- `whiten`: a 2×2 conv whose filters are the eigenvectors of the training images' 2×2 patch covariance,
  each scaled by 1/√eigenvalue, with its negative beside it (so the activation after it keeps both signs).
  Set from data once before training (`init_from_data`), then frozen: its bias still learns.
- Each group's convs start as identity maps on their first input channels (Dirac init), so a deep stack starts
  close to a shallow one; its batch norms learn a shift only (a fixed scale of 1, as in airbench).
- The head multiplies its logits by `head_scale` (1/9): a lower initial temperature than a plain linear layer.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.layers import make_activation, make_pooling
from cnnlab.models.base import Spec, StagedModel, positive_int
from cnnlab.models.registry import register_model


class IdentityInitConv(nn.Conv2d):
    """A 3×3 'same' conv without bias that starts as the identity on its first min(in, out) channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1, bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        n = min(self.in_channels, self.out_channels)
        nn.init.dirac_(self.weight.data[:n])


class ShiftNorm(nn.BatchNorm2d):
    """Batch norm with a learned shift and a fixed scale of 1 (eps as small as float32 allows)."""

    def __init__(self, channels: int, momentum: float = 0.4) -> None:
        super().__init__(channels, eps=1e-12, momentum=momentum)
        self.weight.requires_grad_(False)


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.4g}"


def conv_group(in_channels: int, out_channels: int, pooling: Spec, activation: Spec) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv1=IdentityInitConv(in_channels, out_channels), pool=make_pooling(pooling, out_channels, 2, 2),
        norm1=ShiftNorm(out_channels), act1=make_activation(activation),
        conv2=IdentityInitConv(out_channels, out_channels), norm2=ShiftNorm(out_channels),
        act2=make_activation(activation)))


def whitening_filters(images: torch.Tensor, size: int, eps: float = 5e-4) -> torch.Tensor:
    """The (2·C·size², C, size, size) filters that whiten size×size patches of `images` (N, C, H, W): the
    eigenvectors of the patch covariance scaled by 1/√(eigenvalue + eps), largest first, then their negatives."""
    c = images.shape[1]
    patches = images.unfold(2, size, 1).unfold(3, size, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size)
    patches = patches.to(torch.float64)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    filters = (eigenvectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)).T.reshape(-1, c, size, size)
    return torch.cat([filters, -filters]).to(torch.float32)


@register_model("fast_cnn")
class FastCNN(StagedModel):
    """Stages `whiten`, `block1`.. `block<depth>`, `pool`, `logits`; block i has width·2^min(i-1, 2) channels
    (32, 64, 128 at the default width)."""

    #: how many training images `init_from_data` wants (the whitening layer's patch statistics)
    init_images = 5000

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, pooling: Spec = "max",
                 activation: Spec = "gelu", depth: int | None = None, width: int | None = None,
                 whiten_size: int = 2, head_scale: float = 1 / 9) -> None:
        depth = positive_int("fast_cnn", "depth", depth, 3)
        width = positive_int("fast_cnn", "width", width, 32)
        self.whiten_size = positive_int("fast_cnn", "whiten_size", whiten_size, 2)
        super().__init__("fast_cnn", (in_channels, image_size, image_size))
        whiten = nn.Conv2d(in_channels, 2 * in_channels * self.whiten_size ** 2, self.whiten_size)
        whiten.weight.requires_grad_(False)
        whitening = nn.Sequential(OrderedDict(conv=whiten, act=make_activation(activation)))
        channels, _, _ = self.add_stage("whiten", whitening)
        for i in range(depth):
            out = width * 2 ** min(i, 2)
            self.add_stage(f"block{i + 1}", conv_group(channels, out, pooling, activation))
            channels = out
        self.add_stage("pool", nn.Sequential(OrderedDict(pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten())))
        self.add_stage("logits", nn.Sequential(OrderedDict(linear=nn.Linear(channels, num_classes, bias=False),
                                                           scale=Scale(head_scale))))

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening filters from normalised training images (N, C, H, W)."""
        conv = self.stages["whiten"].conv
        conv.weight.copy_(whitening_filters(images.to(conv.weight.device), self.whiten_size))
        conv.bias.zero_()

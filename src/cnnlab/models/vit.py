"""A small Vision Transformer (Dosovitskiy et al. 2021): non-overlapping patches → linear embedding + learned
position embedding → `depth` pre-norm encoder blocks (torchvision's `EncoderBlock`) → mean over tokens → linear.
No convolution after the patch embedding and no pooling: the attention model the seed articles ask about."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

from cnnlab.errors import CnnlabError
from cnnlab.layers import replace_activations
from cnnlab.models.base import Spec, StagedModel, positive_int, require_no_pooling
from cnnlab.models.registry import register_model


class PatchEmbedding(nn.Module):
    """(B, C, H, W) → (B, tokens, width): a patch-sized stride-patch conv is exactly a per-patch linear map."""

    def __init__(self, in_channels: int, width: int, patch_size: int, image_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)
        self.grid = image_size // patch_size
        self.position = nn.Parameter(torch.randn(1, self.grid * self.grid, width) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2) + self.position


class TokenMean(nn.Module):
    """Final LayerNorm, then the mean over tokens (a class token would add nothing at this size)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x).mean(dim=1)


@register_model("vit")
class ViT(StagedModel):
    """Stages `patch_embed` and `block1`..`blockN` give (tokens, width) — tokens in row-major patch order —
    then `head` (width,) and `logits`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: Spec = "none",
        activation: Spec = "gelu",
        depth: int | None = None,
        width: int | None = None,
        patch_size: int = 4,
        heads: int = 4,
        mlp_ratio: int = 2,
    ) -> None:
        require_no_pooling("vit", pooling, "its stages are token sequences")
        depth = positive_int("vit", "depth", depth, 6)
        width = positive_int("vit", "width", width, 64)
        patch_size = positive_int("vit", "patch_size", patch_size, 4)
        heads = positive_int("vit", "heads", heads, 4)
        if image_size % patch_size:
            raise CnnlabError(f"model 'vit' needs model.image_size divisible by model.patch_size, got image_size "
                              f"{image_size} and patch_size {patch_size}. Valid: patch_size 4 or 7 at 28 px, "
                              f"4 or 8 at 32 px.")
        if width % heads:
            raise CnnlabError(f"model 'vit' needs model.width divisible by model.heads, got width {width} and heads "
                              f"{heads}. Valid: e.g. width=64 heads=4.")
        super().__init__("vit", (in_channels, image_size, image_size))
        self.patch_size = patch_size
        self.add_stage("patch_embed", PatchEmbedding(in_channels, width, patch_size, image_size))
        for i in range(1, depth + 1):
            block = EncoderBlock(heads, width, mlp_ratio * width, dropout=0.0, attention_dropout=0.0)
            replace_activations(block, (nn.GELU,), activation)
            self.add_stage(f"block{i}", block)
        self.add_stage("head", TokenMean(width))
        self.add_stage("logits", nn.Sequential(OrderedDict(linear=nn.Linear(width, num_classes))))

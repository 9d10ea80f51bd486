"""Each named stage's output for many images, flattened (or pooled) to one feature vector per image:
what the linear probe and CKA compare."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def flatten_features(y: torch.Tensor, grid: int | None = None) -> torch.Tensor:
    """One row per image. `grid`: average-pool feature maps to at most grid×grid first (a linear probe
    on every position of an early stage would have more weights than images); ViT tokens are averaged
    over the patch grid then, the way the model's own head reads them."""
    if grid is not None:
        if y.dim() == 4:
            y = F.adaptive_avg_pool2d(y, (min(grid, y.shape[-2]), min(grid, y.shape[-1])))
        elif y.dim() == 3:
            y = y.mean(dim=1)
    return y.reshape(y.shape[0], -1)


@torch.no_grad()
def stage_features(net: nn.Module, x: torch.Tensor, grid: int | None = None,
                   batch_size: int = 500) -> dict[str, torch.Tensor]:
    """{stage name: (images, features) float32 on the CPU}, in forward order; `x` is run in chunks of
    `batch_size` on the model's device. The caller puts the model in eval mode."""
    device = next(net.parameters()).device
    chunks: dict[str, list[torch.Tensor]] = {}
    for start in range(0, x.shape[0], batch_size):
        h = x[start:start + batch_size].to(device)
        for name, stage in net.named_stages():
            h = stage(h)
            chunks.setdefault(name, []).append(flatten_features(h, grid).float().cpu())
    return {name: torch.cat(parts) for name, parts in chunks.items()}

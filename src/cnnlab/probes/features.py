"""Each named stage's output for many images, flattened (or pooled) to one feature vector per image:
what the linear probe and CKA compare."""

from __future__ import annotations

import copy
import weakref

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


# per network: (the in-place versions of its tensors when copied, its NHWC copy): one copy per look
_TWINS: weakref.WeakKeyDictionary[nn.Module, tuple[object, nn.Module]] = weakref.WeakKeyDictionary()


@torch.no_grad()
def forward_twin(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """What the probes run their forward passes through: an eval-mode copy of `net` with its conv weights in
    the NHWC layout (channels_last), which oneDNN runs convolutions and max pooling in about 1.7× faster on a CPU
    (simple_cnn, 500 CIFAR-10 images: 0.18 s against 0.31 s, 2026-12-04, 2-core AMD EPYC). Its outputs are the
    network's up to float rounding; that is checked on `example` (a few images), and `net` itself is used
    when they differ, the copy fails, or the net has no convolutions. The copy is made again once any weight
    or buffer has changed in place (an optimiser step, a batch-norm update) since the last one."""
    if not any(isinstance(m, nn.Conv2d) for m in net.modules()):
        return net
    version = tuple(t._version for t in (*net.parameters(), *net.buffers()))
    cached = _TWINS.get(net)
    if cached is not None and cached[0] == version:
        return cached[1]
    twin: nn.Module = net
    try:
        candidate = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
        x = example[:8].to(next(net.parameters()).device)
        want, got = net(x), candidate(x)
        scale = float(want.abs().max()) if want.numel() else 1.0
        if got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-4 * max(scale, 1.0)):
            twin = candidate
    except RuntimeError:  # an op that needs the NCHW layout: the network as it is
        pass
    _TWINS[net] = (version, twin)
    return twin

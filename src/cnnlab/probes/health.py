"""Health of every layer: the weights and the last training gradient of each named stage, and the share of its
ReLU-family channels that never fire. The failures the sigmoid, identity and depth ablations produce show up
here first: vanishing gradients in the early stages, dead channels, weights that stop moving."""

from __future__ import annotations

import torch
from torch import nn

# ReLU-family non-linearities: a channel "fires" when its output is above 0 somewhere
FIRING = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)


def stage_parameters(net: nn.Module) -> dict[str, list[nn.Parameter]]:
    """{stage: its trainable parameters}; stages without any are left out."""
    found = {name: [p for p in stage.parameters() if p.requires_grad] for name, stage in net.named_stages()}
    return {name: params for name, params in found.items() if params}


def stage_weights(net: nn.Module) -> dict[str, torch.Tensor]:
    """{stage: all its weights, flattened, on the CPU}."""
    return {name: torch.cat([p.detach().reshape(-1) for p in params]).cpu()
            for name, params in stage_parameters(net).items()}


def stage_gradients(net: nn.Module) -> dict[str, torch.Tensor]:
    """{stage: the gradient its parameters hold now, flattened, on the CPU}: taken right after a training step,
    because Lightning clears the gradients before validation; stages without one are left out."""
    return {name: torch.cat([p.grad.detach().reshape(-1) for p in params]).cpu()
            for name, params in stage_parameters(net).items() if all(p.grad is not None for p in params)}


@torch.no_grad()
def dead_fractions(net: nn.Module, x: torch.Tensor, batch: int = 250) -> dict[str, float]:
    """{stage: the share of the channels of its ReLU-family activations (summed over them) whose output is
    never above 0 on any of the images `x` at any position}; stages without such an activation are left out."""
    seen: dict[nn.Module, torch.Tensor] = {}

    def hook(module, _inputs, output):
        y = output.detach()
        peak = y.amax(dim=(0, *range(2, y.dim()))) if y.dim() == 4 else y.reshape(-1, y.shape[-1]).amax(0)
        seen[module] = peak if module not in seen else torch.maximum(seen[module], peak)

    owners = {m: name for name, stage in net.named_stages() for m in stage.modules() if isinstance(m, FIRING)}
    handles = [m.register_forward_hook(hook) for m in owners]
    try:
        device = next(net.parameters()).device
        for chunk in x.split(batch):
            net(chunk.to(device))
    finally:
        for handle in handles:
            handle.remove()
    dead: dict[str, list[int]] = {}
    for module, peak in seen.items():
        counts = dead.setdefault(owners[module], [0, 0])
        counts[0] += int((peak <= 0).sum())
        counts[1] += peak.numel()
    return {name: d / total for name, (d, total) in dead.items()}


def health_numbers(net: nn.Module, x: torch.Tensor, grads: dict[str, torch.Tensor] | None = None
                   ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """(numbers, histograms): per stage `health/weight_norm/<stage>`, `health/grad_norm/<stage>` (L2 norm of
    `grads`, the stage gradients of one training step) and `health/dead_fraction/<stage>` on the images `x`;
    the values to histogram under `health/weights/<stage>` and `health/grads/<stage>`."""
    numbers, histograms = {}, {}
    for name, weights in stage_weights(net).items():
        numbers[f"health/weight_norm/{name}"] = float(weights.norm())
        histograms[f"health/weights/{name}"] = weights
    for name, grad in (grads or {}).items():
        numbers[f"health/grad_norm/{name}"] = float(grad.norm())
        histograms[f"health/grads/{name}"] = grad
    for name, share in dead_fractions(net, x).items():
        numbers[f"health/dead_fraction/{name}"] = share
    return numbers, histograms

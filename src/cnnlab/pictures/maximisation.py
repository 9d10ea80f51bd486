"""Activation maximisation (Erhan et al. 2009; Olah et al. 2017): the input that drives one channel of a
stage as high as it goes, found by regularised gradient ascent from a grey image."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.activations import stage_outputs
from cnnlab.pictures.render import Picture, colourise, image_cell, tile


def channel_means(y: torch.Tensor) -> torch.Tensor:
    """(batch, channels): each channel's mean activation; ViT tokens (batch, tokens, features) average
    over tokens, vectors are their own units."""
    if y.dim() == 4:
        return y.mean(dim=(2, 3))
    if y.dim() == 3:
        return y.mean(dim=1)
    return y.reshape(y.shape[0], -1)


def run_to(net: nn.Module, stage: str, x: torch.Tensor) -> torch.Tensor:
    for name, module in net.named_stages():
        x = module(x)
        if name == stage:
            return x
    raise KeyError(stage)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def maximise(net: nn.Module, stage: str, channels: list[int], start: torch.Tensor, value_range: tuple[float, float],
             steps: int = 96, lr: float = 0.05, l2: float = 0.01, tv: float = 0.05, jitter: int = 1,
             seed: int = 0) -> torch.Tensor:
    """(len(channels), *image shape): one input per channel, each maximising its channel's mean activation,
    starting from `start` (one image per channel, the real image it likes best): a ReLU channel that is
    silent on plain grey would give no gradient at all.

    Jitter (random shifts), an L2 pull to grey and a total-variation penalty keep the result image-like;
    pixel values stay in the data's range. A private generator leaves the training's random state alone."""
    low, high = value_range
    grey = (low + high) / 2
    generator = torch.Generator().manual_seed(seed)
    device = start.device
    noise = torch.randn(start.shape, generator=generator).to(device) * 0.02 * (high - low)
    x = (start.detach() + noise).clamp(low, high).requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr * (high - low))
    index = torch.tensor(channels, device=device)
    scale = None
    for _ in range(steps):
        dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
        shifted = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        activation = channel_means(run_to(net, stage, shifted)).gather(1, index.view(-1, 1)).sum()
        if scale is None:  # the penalties in units of the starting activation, so one setting suits any layer
            scale = activation.detach().abs().clamp_min(1e-3)
        penalty = l2 * ((x - grey) ** 2).mean() / (high - low) ** 2 + tv * total_variation(x) / (high - low)
        loss = -activation / scale + len(channels) * penalty
        (x.grad,) = torch.autograd.grad(loss, [x])  # the input's gradient only: parameter .grad stays as it is
        optimiser.step()
        with torch.no_grad():
            x.clamp_(low, high)
    return x.detach()


def strongest_channels(y: torch.Tensor, count: int) -> list[int]:
    """The `count` channels the probe images drive hardest on average: live ones, worth looking at."""
    means = channel_means(y).mean(dim=0)
    return sorted(means.topk(min(count, len(means))).indices.tolist())


def maximisation_picture(net: nn.Module, probe: torch.Tensor, channels_per_stage: int = 4,
                         steps: int = 96) -> tuple[Picture, dict[str, tuple[list[int], torch.Tensor]]]:
    """A row per stage, a column per chosen channel: what that channel responds to most. Also returns, per
    stage, the channels and the optimised inputs."""
    value_range = (float(probe.min()), float(probe.max()))
    results, cells = {}, []
    outputs = dict(stage_outputs(net, probe))
    for name in outputs:
        channels = strongest_channels(outputs[name], channels_per_stage)
        favourite = channel_means(outputs[name])[:, channels].argmax(dim=0)  # the probe image each likes best
        best = maximise(net, name, channels, probe[favourite], value_range, steps=steps)
        results[name] = (channels, best)
        row = [image_cell(image) for image in best.cpu().numpy()]
        cells += row + [np.full_like(row[0], np.nan)] * (channels_per_stage - len(row))  # blank: fewer channels
    rows = "; ".join(f"{n} {channels}" for n, (channels, _) in results.items())
    caption = (f"Rows: stages, first to last; columns: the {channels_per_stage} channels the probe images drive "
               f"hardest in each, as the input that maximises each one ({steps} steps of jittered, L2- and "
               f"TV-regularised gradient ascent from the probe image it likes best; each cell on its own grey "
               f"scale). Channels: {rows}.")
    return Picture("maximisation/stages", colourise(tile(cells, columns=channels_per_stage)), caption), results

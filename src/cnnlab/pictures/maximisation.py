"""Activation maximisation (Erhan et al. 2009; Olah et al. 2017): the input that drives one channel of a
stage as high as it goes, found by regularised gradient ascent from the probe image the channel likes best,
either on the pixels themselves or on a decorrelated Fourier spectrum (cnnlab.pictures.fourier)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.pictures.activations import stage_outputs
from cnnlab.pictures.fourier import FourierImage
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


PARAMETERISATIONS = ("pixel", "fourier")
ANGLE = 10    # degrees: Fourier images are turned by up to this much each step (Lucid's random_rotate)
ZOOM = 0.1    # and scaled by 1 ± up to this much (Lucid's random_scale)
METHODS = {"pixel": "pixel-space, jittered, L2- and TV-regularised",
           "fourier": "Fourier-parameterised (1/f-scaled, colour-decorrelated spectrum), jittered, turned and scaled"}


def maximise(net: nn.Module, stage: str, channels: list[int], start: torch.Tensor, value_range: tuple[float, float],
             steps: int = 96, lr: float = 0.05, l2: float = 0.01, tv: float = 0.05, jitter: int = 1,
             seed: int = 0, parameterisation: str = "pixel") -> torch.Tensor:
    """(len(channels), *image shape): one input per channel, each maximising its channel's mean activation,
    starting from `start` (one image per channel, the real image it likes best): a ReLU channel that is
    silent on plain grey would give no gradient at all. Values stay in the data's `value_range`.

    "pixel" ascends on the pixels (see `maximise_pixels`; `l2` and `tv` apply to it only), "fourier" on the
    image's decorrelated spectrum (see `maximise_fourier`). A private generator seeded with `seed` leaves
    the training's random state alone, and only the input is differentiated: parameter .grad stays as it is."""
    if parameterisation == "fourier":
        return maximise_fourier(net, stage, channels, start, value_range, steps, lr, jitter, seed)
    if parameterisation != "pixel":
        raise ValueError(f"parameterisation must be one of {', '.join(PARAMETERISATIONS)}, got {parameterisation!r}")
    return maximise_pixels(net, stage, channels, start, value_range, steps, lr, l2, tv, jitter, seed)


def maximise_pixels(net: nn.Module, stage: str, channels: list[int], start: torch.Tensor,
                    value_range: tuple[float, float], steps: int, lr: float, l2: float, tv: float, jitter: int,
                    seed: int) -> torch.Tensor:
    """Adam on the pixels, clamped to the range after each step. Jitter (random shifts), an L2 pull to grey
    and a total-variation penalty keep the result image-like: enough on grey digits, high-frequency colour
    noise on RGB."""
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


def maximise_fourier(net: nn.Module, stage: str, channels: list[int], start: torch.Tensor,
                     value_range: tuple[float, float], steps: int, lr: float, jitter: int, seed: int) -> torch.Tensor:
    """Steepest ascent on a 1/f-scaled, colour-decorrelated spectrum (Olah et al. 2017): each step moves each
    image's spectrum by `lr` (root mean square per coefficient) along its gradient, so the whitening decides
    which frequencies change. (Adam, as in Lucid, steps every coefficient alike, undoing the whitening: on a
    planted red-left/green-right filter it leaves blotches where this draws the pattern.)

    Ascent begins at `start` itself, read back into a spectrum: from Lucid's faint random spectrum, channels
    past the first block of a trained CIFAR-10 net are silent and never move; from the favourite image the
    result keeps its objects, reshaped and recoloured towards what the channel wants. Each step sees the
    images randomly shifted, turned and scaled (`transformed`), so the result cannot hang on single pixels."""
    generator = torch.Generator().manual_seed(seed)
    fourier = FourierImage(start.shape, value_range, device=start.device)
    spectrum = fourier.spectrum(start.detach()).requires_grad_(True)
    index = torch.tensor(channels, device=start.device)
    for _ in range(steps):
        x = transformed(fourier.image(spectrum), generator, jitter)
        activation = channel_means(run_to(net, stage, x)).gather(1, index.view(-1, 1)).sum()
        (gradient,) = torch.autograd.grad(activation, [spectrum])  # the spectrum's gradient only
        rms = gradient.flatten(1).pow(2).mean(dim=1).sqrt().clamp_min(1e-12)
        with torch.no_grad():
            spectrum += lr * gradient / rms.view(-1, *[1] * (gradient.dim() - 1))
    with torch.no_grad():
        return fourier.image(spectrum)


def transformed(x: torch.Tensor, generator: torch.Generator, jitter: int) -> torch.Tensor:
    """Each image shifted by up to `jitter` pixels, turned by up to ANGLE degrees and scaled by 1 ± ZOOM, at
    random (Lucid's transformation robustness, in one bilinear resampling with mirrored edges)."""
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(ANGLE)
    zoom = 1 + (torch.rand(n, generator=generator) * 2 - 1) * ZOOM
    shift = torch.randint(-jitter, jitter + 1, (n, 2), generator=generator) * 2 / torch.tensor([w, h])
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)


def strongest_channels(y: torch.Tensor, count: int) -> list[int]:
    """The `count` channels the probe images drive hardest on average: live ones, worth looking at."""
    means = channel_means(y).mean(dim=0)
    return sorted(means.topk(min(count, len(means))).indices.tolist())


def chosen_parameterisation(parameterisation: str, in_channels: int) -> str:
    """"auto" is "fourier" on 3-channel (RGB) input and "pixel" otherwise; the others stand as given."""
    if parameterisation == "auto":
        return "fourier" if in_channels == 3 else "pixel"
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"parameterisation must be auto, {', '.join(PARAMETERISATIONS)}, got {parameterisation!r}")
    return parameterisation


def maximisation_picture(net: nn.Module, probe: torch.Tensor, channels_per_stage: int = 4, steps: int = 96,
                         parameterisation: str = "auto") -> tuple[Picture, dict[str, tuple[list[int], torch.Tensor]]]:
    """A row per stage, a column per chosen channel: what that channel responds to most. Also returns, per
    stage, the channels and the optimised inputs. `parameterisation`: "pixel", "fourier" or "auto" (Fourier
    on RGB, where pixel-space ascent paints colour noise; pixels on grey, where it draws clean strokes)."""
    parameterisation = chosen_parameterisation(parameterisation, probe.shape[1])
    value_range = (float(probe.min()), float(probe.max()))
    results, cells = {}, []
    outputs = dict(stage_outputs(net, probe))
    for name in outputs:
        channels = strongest_channels(outputs[name], channels_per_stage)
        favourite = channel_means(outputs[name])[:, channels].argmax(dim=0)  # the probe image each likes best
        best = maximise(net, name, channels, probe[favourite], value_range, steps=steps,
                        parameterisation=parameterisation)
        results[name] = (channels, best)
        row = [image_cell(image) for image in best.cpu().numpy()]
        cells += row + [np.full_like(row[0], np.nan)] * (channels_per_stage - len(row))  # blank: fewer channels
    rows = "; ".join(f"{n} {channels}" for n, (channels, _) in results.items())
    caption = (f"Rows: stages, first to last; columns: the {channels_per_stage} channels the probe images drive "
               f"hardest in each, as the input that maximises each one ({steps} steps of {METHODS[parameterisation]} "
               f"gradient ascent from the probe image it likes best; each cell on its own "
               f"{'colour' if probe.shape[1] == 3 else 'grey'} scale). Channels: {rows}.")
    return Picture("maximisation/stages", colourise(tile(cells, columns=channels_per_stage)), caption), results

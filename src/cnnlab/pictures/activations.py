"""Feature maps, stage by stage: what each named stage of a model outputs for each probe image, and
Harley's view of one image going through the whole network, one column per stage."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.render import (
    Picture,
    colourise,
    figure,
    figure_to_array,
    fmt_shape,
    image_cell,
    normalise,
    tile,
    value_scale,
)


@torch.no_grad()
def stage_outputs(net: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Each named stage's output for the batch `x`, in forward order (the model's own stages, so the
    pictures show exactly what `forward` computes)."""
    outputs = []
    for name, stage in net.named_stages():
        x = stage(x)
        outputs.append((name, x))
    return outputs


def as_maps(y: torch.Tensor) -> np.ndarray:
    """Any stage output as 2-D maps per image, (batch, maps, h, w): channels of a feature map; for tokens
    on a square patch grid (ViT), one map over the grid per feature; a vector as one near-square map
    (NaN-padded), the way Harley draws fully connected layers."""
    y = y.detach().double().cpu()
    if y.dim() == 4:
        return y.numpy()
    if y.dim() == 3:
        side = math.isqrt(y.shape[1])
        if side * side == y.shape[1]:
            return y.transpose(1, 2).reshape(y.shape[0], y.shape[2], side, side).numpy()
        return y.unsqueeze(1).numpy()
    flat = y.reshape(y.shape[0], -1)
    side = math.ceil(math.sqrt(flat.shape[1]))
    padded = torch.full((flat.shape[0], side * side), float("nan"), dtype=flat.dtype)
    padded[:, : flat.shape[1]] = flat
    return padded.reshape(flat.shape[0], 1, side, side).numpy()


def stage_cells(y: torch.Tensor, max_channels: int) -> tuple[list[np.ndarray], tuple[float, float], int]:
    """Grid cells (rows: images, columns: the first `max_channels` maps) on one colour scale for the
    whole stage, so strong and weak channels can be told apart; returns cells, (low, high), columns."""
    maps = as_maps(y)[:, :max_channels]
    low, high = value_scale(maps)
    cells = normalise(maps, low, high)
    return [cells[b, c] for b in range(cells.shape[0]) for c in range(cells.shape[1])], (low, high), cells.shape[1]


def cmap_for(low: float) -> str:
    return "viridis" if low >= 0 else "RdBu_r"  # signed maps (tanh, identity): blue < 0 < red


def activation_pictures(outputs: Sequence[tuple[str, torch.Tensor]], labels: Sequence[str],
                        max_channels: int = 16) -> list[Picture]:
    pictures = []
    for name, y in outputs:
        cells, (low, high), columns = stage_cells(y, max_channels)
        total = as_maps(y[:1]).shape[1]
        shown = (f"one map, the {y[0].numel()} values row by row" if y.dim() == 2 else
                 f"{columns} of {total} maps" if total > columns else f"all {total} maps")
        caption = (f"{name}: output {fmt_shape(y.shape[1:])}. Rows: the probe images (classes "
                   f"{', '.join(labels)}); columns: {shown}. One {cmap_for(low)} scale for the stage: "
                   f"{low:.3g} … {high:.3g}.")
        pictures.append(Picture(f"activations/{name}", colourise(tile(cells, columns), cmap_for(low)), caption))
    return pictures


def harley_picture(image: torch.Tensor, outputs: Sequence[tuple[str, torch.Tensor]], label: str,
                   max_channels: int = 8) -> Picture:
    """One probe image through the network (Harley 2015): a column per stage, its maps stacked."""
    columns = [("input", image.unsqueeze(0))] + [(name, y[:1]) for name, y in outputs]
    fig = figure()
    fig.set_size_inches(1.3 * len(columns), 1.0 + 0.9 * max_channels)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, (name, y) in zip(axes, columns):
        if name == "input":  # the image itself: in colour when it has three channels
            ax.imshow(image_cell(y[0].detach().cpu().numpy()), interpolation="nearest")
        else:
            maps = as_maps(y)[0, :max_channels]
            low, high = value_scale(maps)
            ax.imshow(colourise(tile(list(normalise(maps, low, high)), columns=1), cmap_for(low)),
                      interpolation="nearest")
        ax.set_title(f"{name}\n{fmt_shape(y.shape[1:])}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"a '{label}' through the network: each stage's first {max_channels} maps", fontsize=10)
    caption = (f"Harley-style view of one probe image (class {label}): a column per stage, input first, "
               f"each column on its own colour scale.")
    return Picture("activations/by_stage", figure_to_array(fig), caption)

"""What each layer's filters look like: the first layer's kernels as they are (grey, or RGB on colour
input), deeper layers as the mean over their input channels, each layer on one symmetric grey scale."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from cnnlab.layers.locally_connected import LocallyConnected2d
from cnnlab.pictures.render import Picture, colourise, grid_shape, tile


def filter_layers(net: nn.Module) -> list[tuple[str, torch.Tensor, str]]:
    """(name, weight (out, in, kh, kw), note) for every layer with spatial filters, in construction order.

    A locally connected layer shows its centre position's filters; a model with no filters at all (MLP)
    shows its first linear layer's rows as input-shaped images, the MLP's own kind of filter; a recurrent model
    reading rows (rnn) its first layer's input weights, one row-shaped (1 × width) filter per gate unit."""
    found = []
    for name, module in net.named_modules():
        name = name.removeprefix("stages.")
        if isinstance(module, nn.Conv2d):
            found.append((name, module.weight.detach(), ""))
        elif isinstance(module, LocallyConnected2d):
            k, centre = module.kernel_size, module.weight.shape[0] // 2
            weight = module.weight.detach()[centre].reshape(module.out_channels, -1, k, k)
            found.append((name, weight, " (the centre position's; each position has its own)"))
    shape = getattr(net, "input_shape", None)
    if not found and shape is not None:
        first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
        if first is not None and first.in_features == math.prod(shape):
            name = next(n for n, m in net.named_modules() if m is first).removeprefix("stages.")
            found.append((name, first.weight.detach().reshape(-1, *shape), " (rows of the first linear layer)"))
    if not found and shape is not None:
        name, rnn = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.RNNBase)), ("", None))
        if rnn is not None and rnn.input_size == shape[0] * shape[-1]:
            weight = rnn.weight_ih_l0.detach().reshape(-1, shape[0], 1, shape[-1])
            found.append((name.removeprefix("stages."), weight,
                          " (the recurrent layer's input weights: each gate unit's filter over one image row)"))
    return found


def filter_cells(weight: torch.Tensor, first: bool, max_filters: int = 64) -> tuple[list[np.ndarray], float, int]:
    """The grid cells of one layer, each value mapped from [-m, m] to [0, 1] (0 → mid-grey), with m and
    the number of grid columns. First layer: one cell per (filter, input channel), or an RGB cell per
    filter on 3-channel input. Deeper layers: one cell per filter, the mean over its input channels."""
    w = weight[:max_filters].double().cpu()
    if not first:
        w = w.mean(dim=1, keepdim=True)
    m = float(w.abs().max())
    cells = (w / m + 1) / 2 if m > 0 else torch.full_like(w, 0.5)
    out, channels = cells.shape[:2]
    if channels == 3:
        return [c.permute(1, 2, 0).numpy() for c in cells], m, grid_shape(out)[1]
    if channels == 1:
        return [c[0].numpy() for c in cells], m, grid_shape(out)[1]
    return [cells[o, c].numpy() for o in range(out) for c in range(channels)], m, channels


def pick_layers(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over `count` layers, the first and the last always among them."""
    if count <= keep:
        return list(range(count))
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)}) if keep > 1 else [0]


def filter_pictures(net: nn.Module, max_filters: int = 64, max_layers: int = 8) -> list[Picture]:
    layers = filter_layers(net)
    # 1×1 kernels have no spatial pattern to look at, except when they are the first layer
    layers = [layer for i, layer in enumerate(layers) if i == 0 or layer[1].shape[-1] * layer[1].shape[-2] > 1]
    pictures = []
    for i in pick_layers(len(layers), max_layers):
        name, weight, note = layers[i]
        cells, m, columns = filter_cells(weight, first=i == 0, max_filters=max_filters)
        out, channels, kh, kw = weight.shape
        shown = f"{min(out, max_filters)} of {out}" if out > max_filters else f"{out}"
        if i == 0:
            layout = ("one RGB cell per filter" if channels == 3 else "one cell per filter" if channels == 1
                      else f"rows: filters, columns: the {channels} input channels")
        else:
            layout = f"one cell per filter, the mean over its {channels} input channels"
        caption = (f"{name}: {shown} filters {kh}×{kw}{note}, {layout}. Grey scale shared by the layer: "
                   f"black = {-m:.3g}, mid-grey = 0, white = {m:.3g}.")
        pictures.append(Picture(f"filters/{name}", colourise(tile(cells, columns)), caption))
    return pictures

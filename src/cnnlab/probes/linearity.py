"""Linearity: without a non-linearity, stacked convolutions (and linear poolings, batch norm in eval
mode, linear layers) collapse into one affine map f(x) = A·x + b. Fold the network into that map and
measure how far the network is from it; next to it, the accuracy a plain linear classifier gets."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.render import Picture, figure, figure_to_array


@torch.no_grad()
def fold_affine(net: nn.Module, input_shape: tuple[int, ...],
                batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) with A of shape (outputs, inputs): b = f(0) and column i = f(e_i) − f(0), the one affine map
    that agrees with `net` at 0 and at every basis image. If `net` is affine, it is `net`, whatever
    the architecture (branches, strides, padding); if not, the gap below says by how much."""
    weight = next(net.parameters())
    device, dtype = weight.device, weight.dtype
    size = int(np.prod(input_shape))
    b = net(torch.zeros(1, *input_shape, dtype=dtype, device=device))[0]
    columns = []
    for start in range(0, size, batch_size):
        basis = torch.zeros(min(batch_size, size - start), size, dtype=dtype, device=device)
        basis[:, start:start + len(basis)] = torch.eye(len(basis), dtype=dtype, device=device)
        columns.append(net(basis.view(-1, *input_shape)) - b)
    return torch.cat(columns).T.contiguous(), b


def folded_output(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).to(a) @ a.T + b


#: a float32 gap (relative to the largest output) under this may be rounding: the fold is redone in float64
EXACT_BELOW = 1e-3


@torch.no_grad()
def compare_with_fold(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Fold `net` (in its own dtype) and compare it with the network on images `x`: the largest absolute output
    difference, the same relative to the largest output, and both accuracies."""
    a, b = fold_affine(net, tuple(x.shape[1:]))
    device = a.device
    network = torch.cat([net(x[i:i + 500].to(device, a.dtype)) for i in range(0, len(x), 500)])
    folded = folded_output(a, b, x.to(device))
    diff = float((network - folded).abs().max())
    return {"max_abs_diff": diff, "relative_diff": diff / max(float(network.abs().max()), 1e-12),
            "network_acc": float((network.argmax(1).cpu() == y).double().mean()),
            "folded_acc": float((folded.argmax(1).cpu() == y).double().mean()),
            "network": network.cpu(), "folded": folded.cpu(), "templates": a.cpu(), "dtype": str(a.dtype)}


@torch.no_grad()
def linearity(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """compare_with_fold on an eval-mode float32 copy of `net` first: a network with a non-linearity misses
    its fold by far more than float32 rounding (a ReLU simple_cnn by about its whole output). Where the gap is
    under EXACT_BELOW, a float64 copy is folded again, so an affine network shows a gap of about 1e-15, not
    float32's 1e-6: it tells an affine network from a nearly affine one. (The float64 fold alone cost 2.9 s of
    a CIFAR-10 run's probes, the float32 one about a fifth of it.)"""
    single = net if all(p.dtype == torch.float32 for p in net.parameters()) else copy.deepcopy(net).float()
    screen = compare_with_fold(single.eval(), x, y)
    if screen["relative_diff"] >= EXACT_BELOW:
        return screen
    return compare_with_fold(copy.deepcopy(net).double().eval(), x, y)


def linearity_numbers(result: dict, linear_classifier_acc: float) -> dict[str, float]:
    keys = ("max_abs_diff", "relative_diff", "network_acc", "folded_acc")
    return {**{f"linearity/{k}": result[k] for k in keys}, "linearity/linear_classifier_acc": linear_classifier_acc}


def linearity_picture(result: dict, input_shape: tuple[int, ...], linear_classifier_acc: float,
                      class_names: list[str]) -> Picture:
    """Left: network output against folded output (on the diagonal when the network is affine). Right:
    each class's row of A as an image, the template the folded network matches the input against."""
    fig = figure()
    fig.set_size_inches(10, 3.4)
    grid = fig.add_gridspec(2, 7)
    ax = fig.add_subplot(grid[:, :2])
    net_out, folded = result["network"].flatten().numpy(), result["folded"].flatten().numpy()
    ax.scatter(net_out, folded, s=2, alpha=0.3)
    low, high = float(min(net_out.min(), folded.min())), float(max(net_out.max(), folded.max()))
    ax.plot([low, high], [low, high], color="grey", lw=0.8)
    ax.set_xlabel("network logit")
    ax.set_ylabel("folded A·x + b")
    templates = result["templates"][: 10]
    c, h, w = input_shape
    scale = float(templates.abs().max()) or 1.0
    for i, row in enumerate(templates):
        cell = fig.add_subplot(grid[i // 5, 2 + i % 5])
        cell.imshow(row.view(c, h, w).mean(0).numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
        cell.set_title(class_names[i] if i < len(class_names) else str(i), fontsize=8)
        cell.axis("off")
    verdict = "is" if result["relative_diff"] < 1e-6 else "is not"
    caption = (f"The network {verdict} one affine map: the largest gap between network and folded output is "
               f"{result['max_abs_diff']:.3g} ({result['relative_diff']:.3g} of the largest output). Accuracy: "
               f"network {100 * result['network_acc']:.1f} %, folded map {100 * result['folded_acc']:.1f} %, "
               f"a plain linear classifier on the pixels {100 * linear_classifier_acc:.1f} %. Right: each class's "
               f"row of A (red +, blue −, ±{scale:.3g}).")
    return Picture("linearity/fold", figure_to_array(fig), caption)

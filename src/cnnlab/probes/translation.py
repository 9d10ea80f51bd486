"""Translation: is the network insensitive to small shifts? Accuracy and prediction consistency
(Zhang 2019: how often two random shifts of one image get the same label) against the shift size.

Shifts are circular (`torch.roll`): no pixels are invented at the border, and on MNIST-like data, where
the digit sits inside an empty margin, a small circular shift is an ordinary translation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.pictures.render import Picture, figure, figure_to_array


def circular_shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Each image rolled by its own (dy, dx) pixels (down, right)."""
    b, c, h, w = x.shape
    rows = (torch.arange(h, device=x.device) - dy.to(x.device).view(b, 1)) % h  # (b, h)
    cols = (torch.arange(w, device=x.device) - dx.to(x.device).view(b, 1)) % w  # (b, w)
    x = x.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w))
    return x.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    device = next(net.parameters()).device
    return torch.cat([net(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def shift_robustness(net: nn.Module, x: torch.Tensor, y: torch.Tensor, max_shift: int,
                     generator: torch.Generator) -> dict[int, tuple[float, float]]:
    """{s: (accuracy, consistency)} for s = 0..max_shift: each image gets two shifts drawn uniformly from
    [-s, s]² (the generator's draws only); accuracy on the first, consistency between the two."""
    out = {}
    for s in range(max_shift + 1):
        draws = [torch.randint(-s, s + 1, (len(x),), generator=generator) for _ in range(4)]
        first = predict(net, circular_shift(x, draws[0], draws[1]))
        # at s = 0 both draws are no shift: the second prediction is the first (the draws are still made, so
        # every larger s draws the same shifts as before)
        second = first if s == 0 else predict(net, circular_shift(x, draws[2], draws[3]))
        out[s] = (float((first == y).double().mean()), float((first == second).double().mean()))
    return out


def translation_numbers(result: dict[int, tuple[float, float]]) -> dict[str, float]:
    numbers = {}
    for s, (acc, consistency) in result.items():
        numbers[f"translation/acc/shift{s}"] = acc
        numbers[f"translation/consistency/shift{s}"] = consistency
    return numbers


def curve_picture(key: str, xs: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str,
                  caption: str) -> Picture:
    """Percentages against one axis, one line per curve: the shape every robustness probe plots."""
    fig = figure()
    fig.set_size_inches(5.5, 3.2)
    ax = fig.subplots()
    for label, values in curves.items():
        ax.plot(xs, [100 * v for v in values], marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Picture(key, figure_to_array(fig), caption)


def translation_picture(result: dict[int, tuple[float, float]]) -> Picture:
    shifts = sorted(result)
    acc = [result[s][0] for s in shifts]
    consistency = [result[s][1] for s in shifts]
    last = shifts[-1]
    caption = (f"Accuracy and consistency (two random shifts, same label) against the largest shift: at ±{last} px, "
               f"accuracy {100 * acc[-1]:.1f} % (unshifted {100 * acc[0]:.1f} %), consistency "
               f"{100 * consistency[-1]:.1f} %.")
    return curve_picture("translation/by_shift", shifts, {"accuracy": acc, "consistency": consistency},
                         "largest shift (pixels, each direction)", caption)

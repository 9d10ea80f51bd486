"""Mistakes as data: the validation images a model gets wrong, the worst (most confident) first, and the
images it is surest of in each class, as table rows (for a W&B Table) and as a gallery picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.render import Picture, figure, figure_to_array, image_cell


@dataclass(frozen=True)
class Verdict:
    """One validation image: its index in the validation split, why it is listed ('mistake' or 'most
    confident'), the true and predicted class, p(prediction) and p(true class)."""

    index: int
    kind: str
    label: str
    prediction: str
    confidence: float
    p_true: float

    def row(self) -> dict:
        return asdict(self)


@torch.no_grad()
def probabilities(net: nn.Module, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """(N, classes) softmax outputs for the images `x`, computed `batch` at a time on the model's device."""
    device = next(net.parameters()).device
    return torch.cat([torch.softmax(net(chunk.to(device)), 1).cpu() for chunk in x.split(batch)])


def verdicts(y: torch.Tensor, p: torch.Tensor, class_names: Sequence[str], worst: int = 32,
             per_class: int = 2) -> list[Verdict]:
    """The `worst` mistakes, most confident first, then the `per_class` most confident correct images of
    each class (classes in order)."""
    confidence, predicted = p.max(1)
    p_true = p.gather(1, y.view(-1, 1)).view(-1)

    def verdict(i: int, kind: str) -> Verdict:
        return Verdict(i, kind, str(class_names[int(y[i])]), str(class_names[int(predicted[i])]),
                       float(confidence[i]), float(p_true[i]))

    wrong = torch.nonzero(predicted != y).view(-1)
    order = wrong[confidence[wrong].argsort(descending=True, stable=True)][:worst]
    rows = [verdict(int(i), "mistake") for i in order]
    for c in range(len(class_names)):
        right = torch.nonzero((predicted == y) & (y == c)).view(-1)
        best = right[confidence[right].argsort(descending=True, stable=True)][:per_class]
        rows += [verdict(int(i), "most confident") for i in best]
    return rows


def gallery_picture(x: torch.Tensor, rows: Sequence[Verdict], scanned: int, columns: int = 8) -> Picture | None:
    """The mistakes among `rows` as a grid, each titled 'true → predicted' with p(predicted); None if there
    are none."""
    mistakes = [r for r in rows if r.kind == "mistake"]
    if not mistakes:
        return None
    columns = min(columns, len(mistakes))
    lines = -(-len(mistakes) // columns)
    fig = figure()
    fig.set_size_inches(1.35 * columns, 1.55 * lines)
    axes = np.atleast_1d(fig.subplots(lines, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, r in zip(axes, mistakes):
        ax.imshow(image_cell(x[r.index].cpu().numpy()), interpolation="nearest")
        ax.set_title(f"{r.label} → {r.prediction}\np = {r.confidence:.2f}", fontsize=7)
    pairs: dict[tuple[str, str], int] = {}
    for r in mistakes:
        pairs[(r.label, r.prediction)] = pairs.get((r.label, r.prediction), 0) + 1
    (label, prediction), count = max(pairs.items(), key=lambda item: item[1])
    caption = (f"The {len(mistakes)} most confident mistakes among {scanned} validation images, worst first: "
               f"each titled true → predicted class with the model's p(predicted). The commonest confusion "
               f"here: {label} → {prediction} ({count}×).")
    return Picture("mistakes/worst", figure_to_array(fig), caption)

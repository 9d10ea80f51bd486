"""Linear probes (Alain & Bengio 2016): how linearly separable the classes are in each stage's frozen
features. If features get more abstract layer by layer, a linear classifier on later stages does better."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from cnnlab.pictures.render import Picture, figure, figure_to_array


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-3,
               iterations: int = 100) -> nn.Module:
    """Multinomial logistic regression on standardised features, fitted full-batch with L-BFGS from zero
    weights: convex and deterministic, so the same features always give the same probe."""
    x = x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    linear = nn.Linear(x.shape[1], num_classes, dtype=torch.float64)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    z = (x - mean) / std
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=iterations, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)
    loss_fn = nn.CrossEntropyLoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(linear(z), y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    linear.requires_grad_(False)
    return nn.Sequential(_Standardise(mean, std), linear)


class _Standardise(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() - self.mean) / self.std


# The fit is deterministic, so the same rows always give the same accuracy: the linear_probe and linearity
# probes both score a classifier on the same validation pixels, and it is fitted once (about 1 s).
_FITTED: OrderedDict[str, float] = OrderedDict()


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def linear_accuracy(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                    num_classes: int) -> float:
    """Fit on `train`, return the accuracy on `test` (features flattened to rows)."""
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, x_test = x_train.flatten(1), x_test.flatten(1)
    key = f"{num_classes}:{_digest(x_train, y_train, x_test, y_test)}"
    if key not in _FITTED:
        probe = fit_linear(x_train, y_train, num_classes)
        with torch.no_grad():
            _FITTED[key] = float((probe(x_test).argmax(1) == y_test).double().mean())
        while len(_FITTED) > 32:
            _FITTED.popitem(last=False)
    return _FITTED[key]


def linear_probe(features: Mapping[str, torch.Tensor], labels: torch.Tensor, train_count: int,
                 num_classes: int) -> dict[str, float]:
    """{stage: test accuracy} of a linear classifier per stage, fitted on the first `train_count` images
    and tested on the rest (the same split for every stage)."""
    y_train, y_test = labels[:train_count], labels[train_count:]
    return {name: linear_accuracy((f[:train_count], y_train), (f[train_count:], y_test), num_classes)
            for name, f in features.items()}


def linear_probe_picture(accuracy: Mapping[str, float], network_acc: float | None = None) -> Picture:
    """Probe accuracy against depth: a rising line is the claim 'features get more abstract'."""
    names, values = list(accuracy), [100 * v for v in accuracy.values()]
    fig = figure()
    fig.set_size_inches(max(4.0, 0.7 * len(names) + 1.5), 3.2)
    ax = fig.subplots()
    ax.plot(range(len(names)), values, marker="o")
    for i, v in enumerate(values):
        ax.annotate(f"{v:.1f}", (i, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    if network_acc is not None:
        ax.axhline(100 * network_acc, color="grey", ls="--", lw=1, label="network")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("linear probe accuracy (%)")
    ax.grid(alpha=0.3)
    stages = [n for n in names if n != "input"]
    caption = ("Linear probe accuracy per stage (frozen features, held-out validation images): "
               + ", ".join(f"{n} {100 * accuracy[n]:.1f} %" for n in names) + ". "
               + (f"From {stages[0]} to {stages[-1]}: {100 * (accuracy[stages[-1]] - accuracy[stages[0]]):+.1f} points."
                  if len(stages) > 1 else ""))
    return Picture("linear_probe/by_stage", figure_to_array(fig), caption.strip())

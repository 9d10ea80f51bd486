"""The run's report pictures: training curves and the test confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlab.pictures.render import Picture, figure, figure_to_array


def curves_picture(history: Mapping[str, Sequence[tuple[float, float]]]) -> Picture:
    """Loss and accuracy against epochs: `history` maps a metric name (train/loss, val/acc, ...) to
    (epoch, value) points; per-step train loss has fractional epochs."""
    fig = figure()
    fig.set_size_inches(9, 3.4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    styles = {"train": dict(lw=0.8, alpha=0.8), "val": dict(marker="o", lw=1.5)}
    for name, points in sorted(history.items()):
        if not points:
            continue
        split, metric = name.split("/", 1)
        ax = loss_ax if metric == "loss" else acc_ax if metric == "acc" else None
        if ax is None:
            continue
        epochs, values = zip(*points)
        ax.plot(epochs, values, label=name, **styles.get(split, {}))
    for ax, title in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    final = {k: v[-1][1] for k, v in history.items() if v}
    caption = "Training curves: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(final.items())) + " at the end."
    return Picture("report/curves", figure_to_array(fig), caption)


def confusion_picture(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> Picture:
    """Rows: true class, columns: predicted; colour = share of the true class, counts written in."""
    counts = np.asarray(matrix, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(counts)
    fig = figure()
    size = min(12.0, 2.5 + 0.45 * n)
    fig.set_size_inches(size, size * 0.85)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    ticks = range(n)
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=90 if n > 12 else 0, fontsize=7)
    ax.set_yticks(ticks, [str(c) for c in class_names], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if shares[i, j] > 0.5 else "black")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"test confusion matrix: accuracy {100 * accuracy:.2f} % of {counts.sum()}")
    worst = max(((counts[i, j], i, j) for i in range(n) for j in range(n) if i != j), default=(0, 0, 0))
    caption = (f"Test confusion matrix, rows true and columns predicted: accuracy {100 * accuracy:.2f} %; most "
               f"frequent mistake {class_names[worst[1]]} → {class_names[worst[2]]} ({worst[0]}×).")
    return Picture("report/confusion_matrix", figure_to_array(fig), caption)

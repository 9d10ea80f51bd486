"""Rotation: CNNs are not rotation-invariant by construction. Accuracy against the rotation angle, and
the claim that trained first-layer filters are rotated copies of one another, measured against filters
drawn at random."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from cnnlab.pictures.render import Picture, figure, figure_to_array
from cnnlab.probes.translation import predict


def rotation_accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, angles: Sequence[float]) -> dict[float, float]:
    """{angle: accuracy} with every image rotated by `angle` degrees (counter-clockwise, bilinear); the
    corners that come into view take the batch's darkest value, the background of normalised digits."""
    fill = float(x.amin())
    by_turn: dict[float, float] = {}  # ±180° (and 0° / 360°) are one turn: the same images, predicted once
    for a in angles:
        turn = float(a) % 360.0
        if turn not in by_turn:
            rotated = x if turn == 0.0 else TF.rotate(x, float(a), InterpolationMode.BILINEAR, fill=fill)
            by_turn[turn] = float((predict(net, rotated) == y).double().mean())
    return {float(a): by_turn[float(a) % 360.0] for a in angles}


def first_conv_filters(net: nn.Module) -> torch.Tensor | None:
    """(filters, in_channels, k, k) of the first square conv with k ≥ 3, or None (MLP, ViT patches of 1)."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size[0] == module.kernel_size[1] >= 3:
            return module.weight.detach().float().cpu()
    return None


def best_rotated_match(filters: torch.Tensor, rotations: Sequence[int] = (1, 2, 3)) -> torch.Tensor:
    """For each filter, the highest correlation with another filter turned by 90°·r for r in `rotations`
    (r = 0: unturned). Correlation is Pearson's over all of a filter's weights."""
    def standardised(w: torch.Tensor) -> torch.Tensor:
        flat = w.flatten(1).double()
        flat = flat - flat.mean(1, keepdim=True)
        return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)

    plain = standardised(filters)
    best = torch.full((len(filters),), -1.0, dtype=torch.float64)
    for r in rotations:
        corr = plain @ standardised(torch.rot90(filters, r, dims=(2, 3))).T
        corr.fill_diagonal_(-1.0)  # another filter, not itself
        best = torch.maximum(best, corr.max(1).values)
    return best


def filter_rotation_similarity(filters: torch.Tensor, generator: torch.Generator,
                               draws: int = 20) -> dict[str, float | np.ndarray]:
    """Mean best rotated match of the trained filters, the same for unturned copies, and for as many
    i.i.d. Gaussian filters of the same shape (averaged over `draws` draws): the chance level."""
    rotated = best_rotated_match(filters)
    random = torch.stack([best_rotated_match(torch.randn(filters.shape, generator=generator, dtype=torch.float64))
                          for _ in range(draws)])
    return {"rotated": float(rotated.mean()), "unrotated": float(best_rotated_match(filters, (0,)).mean()),
            "random": float(random.mean()), "per_filter": rotated.numpy(),
            "random_per_filter": random.flatten().numpy()}


def rotation_numbers(accuracy: dict[float, float], similarity: dict | None) -> dict[str, float]:
    numbers = {f"rotation/acc/{a:+.0f}deg": v for a, v in accuracy.items()}
    if similarity is not None:
        numbers["rotation/filter_similarity"] = similarity["rotated"]
        numbers["rotation/filter_similarity_unrotated"] = similarity["unrotated"]
        numbers["rotation/filter_similarity_random"] = similarity["random"]
    return numbers


def rotation_picture(accuracy: dict[float, float], similarity: dict | None) -> Picture:
    """Left: accuracy against angle. Right: each filter's best rotated match, trained vs random filters."""
    fig = figure()
    fig.set_size_inches(9 if similarity else 5.5, 3.2)
    axes = fig.subplots(1, 2 if similarity else 1)
    ax = axes[0] if similarity else axes
    angles = sorted(accuracy)
    ax.plot(angles, [100 * accuracy[a] for a in angles], marker="o")
    ax.set_xlabel("rotation (degrees)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(range(-180, 181, 90))
    ax.grid(alpha=0.3)
    caption = (f"Accuracy against rotation: {100 * accuracy.get(0.0, float('nan')):.1f} % upright, "
               f"{100 * min(accuracy.values()):.1f} % at worst ({min(accuracy, key=accuracy.get):+.0f}°).")
    if similarity:
        low = np.floor(20 * min(similarity["per_filter"].min(), similarity["random_per_filter"].min())) / 20
        bins = np.linspace(low, 1, 31)
        axes[1].hist(similarity["random_per_filter"], bins=bins, density=True, alpha=0.5, label="random filters")
        axes[1].hist(similarity["per_filter"], bins=bins, density=True, alpha=0.7, label="trained filters")
        axes[1].set_xlabel("best correlation with a turned copy of another filter")
        axes[1].legend(fontsize=8)
        caption += (f" First-layer filters: mean best match with a 90°/180°/270°-turned other filter "
                    f"{similarity['rotated']:.2f} (unturned {similarity['unrotated']:.2f}; random filters "
                    f"{similarity['random']:.2f}).")
    return Picture("rotation/by_angle", figure_to_array(fig), caption)

"""Centred kernel alignment (Kornblith et al. 2019, "Similarity of Neural Network Representations
Revisited"): how alike two representations of the same images are. 1 = the same up to rotation and
isotropic scaling, near 0 = unrelated. Comparing every stage with every other shows where a network
changes its representation (within one model) and where two networks agree (between models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.pictures.render import Picture, figure, figure_to_array

KINDS = ("linear", "rbf")
DEAD = 1e-10  # features whose centred norm is below DEAD × their raw norm are constant: a dead stage


class Gram(NamedTuple):
    """A centred Gram matrix (n × n, float64) and its Frobenius norm, sqrt(HSIC(K, K)) up to the
    1/(n−1)² that cancels in CKA. norm 0 marks a dead stage (every image gives the same features)."""

    centred: torch.Tensor
    norm: float


def _rows(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x.reshape(x.shape[0], -1).to(torch.float64)


def _same_images(n_a: int | str, n_b: int | str) -> None:
    if n_a != n_b or "/" in str(n_a):
        raise CnnlabError(f"CKA compares representations of the same images, but the first features "
                          f"have {n_a} images and the second {n_b}: give both the same inputs in the same order.")


def gram(x, kind: str = "linear", sigma_frac: float = 0.8) -> Gram:
    """Centred Gram matrix of (n, ...) features. Linear: XcXcᵀ with column-centred Xc (already centred).
    RBF: exp(−‖xi−xj‖²/(2σ²)), σ = sigma_frac × the median pairwise distance (the median of the
    non-zero distances when most images coincide, e.g. a mostly silent ReLU), then centred HKH."""
    if kind not in KINDS:
        raise unknown_name("CKA kind", kind, KINDS)
    x = _rows(x)
    xc = x - x.mean(dim=0)
    n = xc.shape[0]
    if xc.norm() <= DEAD * x.norm():  # constant (or all-zero) features; NaN features stay NaN
        return Gram(torch.zeros(n, n, dtype=torch.float64), 0.0)
    del x
    k = xc @ xc.T
    if kind == "rbf":
        sq = k.diagonal()
        d2 = (sq[:, None] + sq[None, :] - 2 * k).clamp_min(0)
        pairs = d2[torch.ones(n, n, dtype=torch.bool).triu(1)]
        median = pairs.median()
        if median <= 0:
            pairs = pairs[pairs > 0]
            if not len(pairs):  # all images coincide after rounding: as dead as constant features
                return Gram(torch.zeros(n, n, dtype=torch.float64), 0.0)
            median = pairs.median()
        k = torch.exp(-d2 / (2 * sigma_frac ** 2 * median))  # median of d² = (median distance)²
        k = k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()
    return Gram(k, float(k.norm()))


def _cka(a: Gram, b: Gram) -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K)·HSIC(L, L)) = ⟨Kc, Lc⟩_F / (‖Kc‖_F·‖Lc‖_F); 0.0 for a dead stage."""
    if a.norm == 0 or b.norm == 0:
        return 0.0
    return float((a.centred * b.centred).sum() / (a.norm * b.norm))


def linear_cka(x, y) -> float:
    """Linear CKA of (n, d1) and (n, d2) features of the same n images; 0.0 if either is constant."""
    _same_images(len(x), len(y))
    return _cka(gram(x), gram(y))


def rbf_cka(x, y, sigma_frac: float = 0.8) -> float:
    """RBF-kernel CKA (σ = sigma_frac × median distance, per representation); 0.0 if either is constant."""
    _same_images(len(x), len(y))
    return _cka(gram(x, "rbf", sigma_frac), gram(y, "rbf", sigma_frac))


def cka_matrix(feats_a: Mapping[str, torch.Tensor], feats_b: Mapping[str, torch.Tensor],
               kind: str = "linear") -> tuple[list[str], list[str], np.ndarray]:
    """CKA of every stage of `feats_a` (rows) with every stage of `feats_b` (columns), features of the
    same images in the same order (from `stage_features`). Each stage's Gram is computed once (n² float64
    each: 8 MB per stage at 1000 images). Pass the same dict twice to compare a model with itself: the
    names then come back as one list for both, which `cka_numbers` and `cka_picture` recognise."""
    if kind not in KINDS:
        raise unknown_name("CKA kind", kind, KINDS)
    count_a = "/".join(map(str, sorted({len(v) for v in feats_a.values()})))
    count_b = "/".join(map(str, sorted({len(v) for v in feats_b.values()})))
    _same_images(count_a, count_b)  # "a/b" when one dict's stages disagree: refused too
    within = feats_a is feats_b
    names_a = list(feats_a)
    names_b = names_a if within else list(feats_b)
    grams_a = [gram(feats_a[name], kind) for name in names_a]
    grams_b = grams_a if within else [gram(feats_b[name], kind) for name in names_b]
    matrix = np.zeros((len(names_a), len(names_b)))
    for i, a in enumerate(grams_a):
        for j, b in enumerate(grams_b):
            if within and j < i:
                matrix[i, j] = matrix[j, i]
            else:
                matrix[i, j] = _cka(a, b)
    return names_a, names_b, matrix


GRAMS_FILE = "cka_grams.pt"


def save_grams(features: Mapping[str, torch.Tensor], path: Path) -> None:
    """Each stage's centred linear Gram matrix (float32) and its norm, for CKA against other runs later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grams = {name: gram(x) for name, x in features.items()}
    torch.save({name: (g.centred.to(torch.float32), g.norm) for name, g in grams.items()}, path)


def load_grams(path: Path) -> dict[str, Gram]:
    return {name: Gram(centred.to(torch.float64), norm)
            for name, (centred, norm) in torch.load(path, weights_only=True).items()}


def correspondence(grams_a: Mapping[str, Gram], grams_b: Mapping[str, Gram]) -> float:
    """Kornblith et al. 2019's layer-correspondence test between two runs of one architecture: the share of
    stages of `a` whose most CKA-similar stage of `b` is the same stage, and the same from b to a."""
    names = [n for n in grams_a if n in grams_b]
    if not names:
        raise CnnlabError("correspondence needs two runs with stages of the same names (one architecture).")
    _same_images(grams_a[names[0]].centred.shape[0], grams_b[names[0]].centred.shape[0])
    matrix = np.array([[_cka(grams_a[a], grams_b[b]) for b in names] for a in names])
    hits = sum(int(np.argmax(matrix[i]) == i) for i in range(len(names)))
    hits += sum(int(np.argmax(matrix[:, j]) == j) for j in range(len(names)))
    return hits / (2 * len(names))


def cka_numbers(names_a: Sequence[str], names_b: Sequence[str], matrix: np.ndarray, kind: str,
                prefix: str = "cka") -> dict[str, float]:
    """Flat numbers to log, `<prefix>/<kind>/<a>~<b>`: within one model (`names_a is names_b`, as
    `cka_matrix` returns them) only the pairs a before b; between two models every pair."""
    within = names_a is names_b
    return {f"{prefix}/{kind}/{a}~{b}": float(matrix[i][j]) for i, a in enumerate(names_a)
            for j, b in enumerate(names_b) if not within or i < j}


def cka_picture(names_a: Sequence[str], names_b: Sequence[str], matrix: np.ndarray, kind: str, key: str,
                title_a: str = "stage", title_b: str = "stage") -> Picture:
    """Heatmap on a fixed 0..1 scale (values written in up to 12 × 12), rows `names_a`, columns `names_b`."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    label = "Linear CKA" if kind == "linear" else f"{kind.upper()} CKA"
    fig = figure()
    fig.set_size_inches(min(12.0, 2.8 + 0.55 * cols), min(11.0, 2.2 + 0.5 * rows))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    ax.set_xticks(range(cols), list(names_b), rotation=45 if cols > 6 else 0, ha="right" if cols > 6 else "center",
                  fontsize=7)
    ax.set_yticks(range(rows), list(names_a), fontsize=7)
    ax.set_xlabel(title_b)
    ax.set_ylabel(title_a)
    if rows <= 12 and cols <= 12:
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.6 else "black")
    scale = "1 = same representation up to rotation and scale, 0 = unrelated"
    if names_a is names_b:
        ax.set_title(f"{label} between the stages of one model")
        adjacent = [(matrix[i, i + 1], names_a[i], names_a[i + 1]) for i in range(rows - 1)]
        if adjacent:
            low = min(adjacent)
            detail = (f"adjacent stages average {np.mean([a[0] for a in adjacent]):.2f}; the biggest change is "
                      f"{low[1]} → {low[2]} ({low[0]:.2f})")
        else:
            detail = "only one stage, nothing to compare"
        caption = f"{label} between the {rows} stages of one model ({scale}): {detail}."
    else:
        ax.set_title(f"{label}: {title_a} (rows) vs {title_b} (columns)")
        i, j = np.unravel_index(np.argmax(matrix), matrix.shape)
        detail = f"the most similar pair is {names_a[i]} ~ {names_b[j]} ({matrix[i, j]:.2f})"
        if rows == cols:
            detail = f"stages at the same depth average {np.mean(np.diag(matrix)):.2f}; {detail}"
        side_a = "the first model" if title_a == "stage" else title_a
        side_b = "the second model" if title_b == "stage" else title_b
        caption = (f"{label} between the {rows} stages of {side_a} (rows) and the {cols} stages of {side_b} "
                   f"(columns) ({scale}): {detail}.")
    return Picture(key, figure_to_array(fig), caption)

"""Dataset examples (Zeiler & Fergus 2014, fig. 2; OpenAI Microscope): for the most active channels of each
stage, the validation images that drive the channel hardest, each cropped to the input window of the unit that
fired, so the reader sees what a channel responds to in real data rather than in an optimised image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.models.base import evaluating
from cnnlab.pictures.activations import stage_outputs
from cnnlab.pictures.render import MIN_CELL, Picture, colourise, normalise, tile
from cnnlab.probes.receptive_field import StageRF, theoretical_rf, unit_window


@dataclass(frozen=True, eq=False)
class StageExamples:
    """One stage's examples, a row per chosen channel (strongest first), a column per example (strongest first).

    `channels`: the channel ids (features, for vectors and tokens); `images`: (rows, k) indices into the images
    given, each image at most once per row; `labels`: their classes (-1 when none were given); `positions`:
    (rows, k, 2) the (row, column) of the unit that fired, on the stage's map (on the patch grid for tokens,
    (0, 0) for vectors); `values`: (rows, k) its activation; `windows`: (rows, k, 4) (top, left, bottom, right)
    of the input pixels it sees, bottom/right exclusive (the whole image where the stage sees all of it);
    `rf`: the stage's theoretical field; `silent`: how many channels never changed over the images; `local`:
    False where every unit sees the whole image (vectors, tokens after attention), so the crops are whole images."""

    stage: str
    rf: StageRF
    channels: list[int]
    images: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    windows: np.ndarray
    silent: int
    local: bool


def _units(y: torch.Tensor, rf: StageRF) -> tuple[torch.Tensor, tuple[int, int], bool]:
    """(batch, units, positions) of a stage output, the (rows, columns) grid the positions lie on, and whether a
    unit's window is local: feature maps keep their map; ViT tokens on a square patch grid are positions on it;
    vectors have one position and see everything."""
    if y.dim() == 4:
        return y.flatten(2), tuple(y.shape[-2:]), not rf.whole
    if y.dim() == 3:
        side = math.isqrt(y.shape[1])
        square = side * side == y.shape[1]
        return y.transpose(1, 2), (side, side) if square else (1, y.shape[1]), square and not rf.whole
    return y.reshape(y.shape[0], -1, 1), (1, 1), False


class _TopK:
    """A running per-channel top-k over images (each image counted once per channel, at its strongest unit),
    plus each channel's extremes over every image and position, so silent channels can be told apart."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.values = self.images = self.positions = self.low = None

    def add(self, units: torch.Tensor, first_image: int) -> None:
        units = units.detach()  # reduced where it lies (maybe a GPU); only (batch, channels) numbers come back
        best, where = units.max(dim=2)
        low = units.amin(dim=(0, 2)).double().cpu()
        values, positions = best.T.double().cpu(), where.T.cpu()
        images = torch.arange(first_image, first_image + units.shape[0]).expand(units.shape[1], -1)
        if self.values is not None:
            values = torch.cat([self.values, values], dim=1)
            images = torch.cat([self.images, images], dim=1)
            positions = torch.cat([self.positions, positions], dim=1)
            low = torch.minimum(self.low, low)
        top = values.topk(min(self.k, values.shape[1]), dim=1).indices
        self.values, self.images = values.gather(1, top), images.gather(1, top)
        self.positions, self.low = positions.gather(1, top), low


def _cell_side(rf: StageRF, local: bool, extent: int) -> int:
    return min(rf.size, extent) if local else extent


def _crop_cell(image: np.ndarray, window: tuple[int, int, int, int], start: tuple[int, int],
               cell: tuple[int, int], scale: tuple[float, float]) -> np.ndarray:
    """A (cell_h, cell_w, 3) cell in [0, 1], NaN (white) where the window runs past the image: the crop sits where
    it lies in the unclipped window `start` (its first row and column, maybe negative), so the unit's centre stays
    the cell's centre; RGB in colour, other channel counts as their mean in grey, on the picture's one scale."""
    top, left, bottom, right = window
    pixels = normalise(image[:, top:bottom, left:right], *scale)
    rgb = pixels.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(pixels.mean(axis=0)[..., None], 3, axis=2)
    out = np.full((*cell, 3), np.nan)
    h, w = rgb.shape[:2]
    y = min(max(top - start[0], 0), cell[0] - h)
    x = min(max(left - start[1], 0), cell[1] - w)
    out[y:y + h, x:x + w] = rgb
    return out


def _stage_examples(name: str, top: _TopK, rf: StageRF, grid: tuple[int, int], local: bool, channels: int,
                    side: tuple[int, int], labels: np.ndarray | None) -> StageExamples:
    high, low = top.values[:, 0], top.low
    live = [c for c in high.argsort(descending=True, stable=True).tolist() if high[c] > low[c]]
    chosen = live[:channels]
    index = torch.tensor(chosen, dtype=torch.long)
    images = top.images[index].numpy()
    flat = top.positions[index].numpy()
    positions = np.stack([flat // grid[1], flat % grid[1]], axis=-1)
    whole = StageRF(rf.size, rf.jump, True)
    windows = np.array([[unit_window(rf if local else whole, int(r), int(c), side) for r, c in row]
                        for row in positions], dtype=np.int64).reshape(*images.shape, 4)
    return StageExamples(
        stage=name, rf=rf, channels=chosen, images=images,
        labels=labels[images] if labels is not None else np.full_like(images, -1),
        positions=positions.reshape(*images.shape, 2), values=top.values[index].numpy(), windows=windows,
        silent=len(high) - len(live), local=local)


def _caption(ex: StageExamples, kind: str, side: tuple[int, int], count: int, scale: tuple[float, float],
             rgb: bool, class_names: Sequence[str] | None) -> str:
    h, w = side
    k = ex.images.shape[1]
    if not ex.channels:
        return (f"Dataset examples, {ex.stage}: none of its {ex.silent} {kind}s varies over these {count} images "
                f"(all silent), so there is nothing to show.")
    if ex.local:
        wider = f", wider than the {h}×{w} image, so at most the whole image" if ex.rf.size > min(h, w) else ""
        window = (f"each cropped to the input window of the unit that fired: its receptive field, "
                  f"{ex.rf.size}×{ex.rf.size} px{wider}, the units {ex.rf.jump} px apart. White: the part of a "
                  f"window beyond the image border (the net sees padding there)")
    else:
        window = f"whole images: every unit of {ex.stage} sees the whole {h}×{w} image"
    silent = (f"; {ex.silent} of its {kind}s never vary over these images and are left out" if ex.silent else "")

    def example(value: float, label: int) -> str:
        named = f" ({class_names[label]})" if class_names is not None and 0 <= label < len(class_names) else ""
        return f"{value:.3g}{named}"

    rows = "; ".join(f"ch {c}: " + ", ".join(example(v, int(lab)) for v, lab in zip(vs, labels))
                     for c, vs, labels in zip(ex.channels, ex.values, ex.labels))
    pixels = "in colour" if rgb else "in grey (the mean over input channels)"
    named = " (class)" if class_names is not None and ex.labels.size and ex.labels.min() >= 0 else ""
    return (f"Dataset examples, {ex.stage}: rows are its {len(ex.channels)} most active {kind}s (highest activation "
            f"first{silent}), columns the {k} of {count} images that drive each hardest, strongest first (an image "
            f"at most once per row, at its strongest unit); {window}. Pixels {pixels}, on one scale for the "
            f"picture: the images' range {scale[0]:.3g} … {scale[1]:.3g}. Activations{named}: {rows or 'none'}.")


def top_examples(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | Sequence[int] | None = None,
                 channels: int = 6, k: int = 8, batch: int = 256) -> dict[str, StageExamples]:
    """Each stage's examples: the `channels` channels with the highest activation anywhere (silent ones left
    out), each with the `k` images (N, C, H, W) that drive it hardest and the window of the unit that fired.
    One forward pass in eval mode, `batch` images at a time, keeping only a running top-k."""
    rfs = theoretical_rf(net)
    parameter = next(net.parameters())
    count, side = images.shape[0], tuple(images.shape[-2:])
    tops: dict[str, _TopK] = {}
    shapes: dict[str, tuple[tuple[int, int], bool]] = {}
    with evaluating(net), torch.no_grad():
        for start in range(0, count, batch):
            chunk = images[start:start + batch].to(device=parameter.device, dtype=parameter.dtype)
            for name, y in stage_outputs(net, chunk):
                units, grid, local = _units(y, rfs[name])
                shapes[name] = grid, local
                tops.setdefault(name, _TopK(k)).add(units, start)
    label_array = None if labels is None else np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
    return {name: _stage_examples(name, top, rfs[name], *shapes[name], channels, side, label_array)
            for name, top in tops.items()}


def dataset_examples(net: nn.Module, images: torch.Tensor, labels: torch.Tensor | Sequence[int] | None = None,
                     class_names: Sequence[str] | None = None, channels: int = 6, k: int = 8,
                     batch: int = 256) -> tuple[list[Picture], dict[str, StageExamples]]:
    """One picture per stage, key `examples/<stage>`: a row per channel among the `channels` with the highest
    activation anywhere (silent channels left out), a column per example: the `k` images (N, C, H, W) that drive
    it hardest, each cropped to the window of the unit that fired, padded white past the image border. Vectors and
    ViT tokens after attention see the whole image, so their features get whole images (`top_examples`); also
    returns each stage's numbers."""
    data = top_examples(net, images, labels, channels, k, batch)
    count, side = images.shape[0], tuple(images.shape[-2:])
    stage_shapes = net.stage_shapes()
    scale = (float(images.min()), float(images.max()))
    rgb = images.shape[1] == 3
    pictures = []
    for name, ex in data.items():
        local, kind = ex.local, "channel" if len(stage_shapes[name]) == 3 else "feature"
        cell = (_cell_side(ex.rf, local, side[0]), _cell_side(ex.rf, local, side[1]))
        cells = []
        for window_row, image_row, position_row in zip(ex.windows, ex.images, ex.positions):
            for window, index, (r, c) in zip(window_row, image_row, position_row):
                start = ((ex.rf.offset[0] + r * ex.rf.jump, ex.rf.offset[1] + c * ex.rf.jump) if local
                         else (0, 0))
                pixels = images[int(index)].detach().double().cpu().numpy()
                cells.append(_crop_cell(pixels, tuple(window), start, cell, scale))
        image = (colourise(tile(cells, columns=ex.images.shape[1])) if cells
                 else np.full((MIN_CELL, MIN_CELL, 3), 255, np.uint8))
        pictures.append(Picture(f"examples/{name}", image,
                                _caption(ex, kind, side, count, scale, rgb, class_names)))
    return pictures, data

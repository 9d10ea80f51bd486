"""Turn numbers into pictures: tile equally sized maps into a grid, colour them with a stated scale, and
render matplotlib figures to arrays. Every picture is an RGB uint8 array, so W&B, TensorBoard and PNG files
all get exactly the same pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

GAP = 2        # pixels of background between cells
MIN_CELL = 64  # small maps are enlarged (nearest neighbour) until a cell is at least this many pixels high


@dataclass
class Picture:
    """One image to log: `key` names the panel (e.g. 'filters/block1'), `caption` says how to read it."""

    key: str
    image: np.ndarray  # (H, W, 3) uint8
    caption: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as an image viewer states it."""
        return self.image.shape[1], self.image.shape[0]


def upscale_for(height: int) -> int:
    return max(1, math.ceil(MIN_CELL / max(height, 1)))


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) for `count` cells: near-square unless the columns are given."""
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    return math.ceil(count / columns), columns


def tile(cells: Sequence[np.ndarray], columns: int | None = None, scale: int | None = None,
         gap: int = GAP) -> np.ndarray:
    """Cells of one shape, (h, w) or (h, w, 3), into one array with NaN gaps, row by row.

    Each cell is enlarged `scale` times by pixel repetition, so every cell pixel keeps its exact value."""
    cells = [np.asarray(c, dtype=np.float64) for c in cells]
    if not cells:
        raise ValueError("nothing to tile")
    h, w = cells[0].shape[:2]
    scale = scale or upscale_for(h)
    rows, columns = grid_shape(len(cells), columns)
    ch, cw = h * scale, w * scale
    out = np.full((rows * ch + (rows - 1) * gap, columns * cw + (columns - 1) * gap, *cells[0].shape[2:]), np.nan)
    for i, cell in enumerate(cells):
        r, c = divmod(i, columns)
        big = cell.repeat(scale, axis=0).repeat(scale, axis=1)
        out[r * (ch + gap): r * (ch + gap) + ch, c * (cw + gap): c * (cw + gap) + cw] = big
    return out


def cell_origin(index: int, cell_shape: tuple[int, int], columns: int, scale: int, gap: int = GAP) -> tuple[int, int]:
    """Top-left pixel (row, column) of cell `index` in a `tile` grid: where to look for it in the picture."""
    r, c = divmod(index, columns)
    return r * (cell_shape[0] * scale + gap), c * (cell_shape[1] * scale + gap)


def colourise(values: np.ndarray, cmap: str = "gray") -> np.ndarray:
    """Values in [0, 1] (NaN = background, drawn white) → RGB uint8. RGB input is taken as is."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3 or cmap == "gray":  # RGB as is; grey exactly: value v → round(255·v)
        out = np.round(np.clip(np.nan_to_num(values, nan=1.0), 0, 1) * 255).astype(np.uint8)
        return out if out.ndim == 3 else np.repeat(out[..., None], 3, axis=2)
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    return colours(np.ma.masked_invalid(np.clip(values, 0, 1)), bytes=True)[..., :3]


def image_cell(image, stretch: bool = True) -> np.ndarray:
    """An input image (C, H, W) as an RGB cell in [0, 1], stretched to its own range (or, `stretch=False`,
    taken as already in [0, 1]): colour as is on 3-channel input, else the mean over channels in grey."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape[0] == 3:
        rgb = image.transpose(1, 2, 0)
        return normalise(rgb, rgb.min(), rgb.max()) if stretch else rgb
    grey = image.mean(axis=0)
    return colourise(normalise(grey, grey.min(), grey.max()) if stretch else grey) / 255


def normalise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto [0, 1] (a constant map becomes 0.5)."""
    values = np.asarray(values, dtype=np.float64)
    if high <= low:
        return np.full_like(values, 0.5)
    return (values - low) / (high - low)


def signed_scale(values: np.ndarray) -> tuple[float, float]:
    """A colour scale that puts zero in the middle: [-m, m] with m = max |value|."""
    m = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    return -m, m


def value_scale(values: np.ndarray) -> tuple[float, float]:
    """[0, max] for non-negative values (ReLU maps), [-m, m] when some are negative."""
    low = float(np.nanmin(values))
    return (0.0, float(np.nanmax(values))) if low >= 0 else signed_scale(values)


def figure() -> Figure:
    """A matplotlib figure that needs no display and no global pyplot state."""
    fig = Figure(dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_png(image: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)

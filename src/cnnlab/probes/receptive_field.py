"""Receptive fields, stage by stage: how many input pixels each stage can see (the theoretical RF, read off the
architecture) and how much of that it actually uses (the effective RF, Luo et al. 2016: the gradient of a centre
unit w.r.t. the input). The question: do receptive fields grow with depth, a 3-pixel kernel stacked n times seeing
2n+1 pixels, and does the effective field grow as fast? `unit_window` gives the exact input pixels one unit sees
(what the dataset-examples pictures crop to)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.lightning_compat import tree_leaves
from cnnlab.models.base import evaluating
from cnnlab.pictures.render import MIN_CELL, Picture, cell_origin, colourise, grid_shape, tile, upscale_for

OUTLINE = (255, 64, 64)  # the theoretical RF square, drawn over the viridis ERF map


@dataclass(frozen=True)
class StageRF:
    """`size`: pixels one unit can see, 1 + Σ (k_eff − 1)·Π strides before (it may exceed the image, counting
    padding; at least the image side once `whole`, so sizes never shrink along the stages); `jump`: input pixels
    between neighbouring units (product of strides);
    `whole`: the stage mixes every input position (dense layer on a flattened map, global pooling, attention);
    `offset`: (row, column) of the first input pixel of unit (0, 0)'s window, counting padding (so often negative);
    unit (r, c) sees rows offset[0] + r·jump … + size − 1 (see `unit_window`). It is where the field lies, not how
    big it is, so it is left out of `==`; (0, 0) when `whole`."""

    size: int
    jump: int
    whole: bool = False
    offset: tuple[int, int] = field(default=(0, 0), compare=False)


def unit_window(rf: StageRF, row: int, col: int, side: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input pixels unit (row, col) of a stage with field `rf` sees, clipped
    to an image of `side` (an int for square images, or (height, width)); bottom and right are exclusive, so
    `image[..., top:bottom, left:right]` is the crop. The whole image once `rf.whole`; empty (top == bottom or
    left == right) for a unit that sees only padding."""
    height, width = (side, side) if isinstance(side, int) else side
    if rf.whole:
        return 0, 0, height, width
    top, left = rf.offset[0] + row * rf.jump, rf.offset[1] + col * rf.jump
    top, bottom = min(max(top, 0), height), min(max(top + rf.size, 0), height)
    left, right = min(max(left, 0), width), min(max(left + rf.size, 0), width)
    return top, left, bottom, right


@dataclass(frozen=True, eq=False)
class StageERF:
    """`grad_map`: |∂ centre unit / ∂ input| over the input image, summing to 1; `sigma` and `centre`
    (row, column): the isotropic Gaussian with the same moments, in input pixels (NaN for a zero map)."""

    sigma: float
    centre: tuple[float, float]
    grad_map: np.ndarray


def _arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    value = args[index] if len(args) > index else kwargs.get(name, default)
    return default if value is None else value


def _first(value) -> int:
    """Square windows are assumed: the row value of an int-or-pair argument."""
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1])) if value else (0, 0)
    return int(value), int(value)


def _padding(func, args: tuple, kwargs: dict) -> tuple[int, int]:
    """(top, left) zero padding of a windowed op: how far its first window starts before the map's first row
    and column. 'same' pads d·(k − 1) // 2 before (PyTorch puts an odd extra pixel after), 'valid' nothing."""
    if func is F.conv2d:
        padding = _arg(args, kwargs, 4, "padding", 0)
        if isinstance(padding, str):
            if padding == "valid":
                return 0, 0
            kernel = _arg(args, kwargs, 1, "weight").shape[-2:]
            dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
            return tuple((d * (k - 1)) // 2 for d, k in zip(dilation, kernel))
        return _pair(padding)
    if func in (F.max_pool2d, F.max_pool2d_with_indices, F.avg_pool2d, F.unfold):
        return _pair(_arg(args, kwargs, 3, "padding", 0))
    return 0, 0


def _window(func, args: tuple, kwargs: dict) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) of a windowed op on feature maps, or None for any other op."""
    if func is F.conv2d:
        weight = _arg(args, kwargs, 1, "weight")
        return (weight.shape[-2], _first(_arg(args, kwargs, 3, "stride", 1)),
                _first(_arg(args, kwargs, 5, "dilation", 1)))
    if func in (F.max_pool2d, F.max_pool2d_with_indices, F.avg_pool2d):
        k = _first(_arg(args, kwargs, 1, "kernel_size"))
        stride = _arg(args, kwargs, 2, "stride") or k  # None or [] means stride = kernel
        dilation = _arg(args, kwargs, 4, "dilation", 1) if func is not F.avg_pool2d else 1
        return k, _first(stride), _first(dilation)
    if func is F.lp_pool2d:
        k = _first(_arg(args, kwargs, 2, "kernel_size"))
        return k, _first(_arg(args, kwargs, 3, "stride") or k), 1
    if func is F.unfold:  # locally connected layers: one filter per position, the same window as a conv
        return (_first(_arg(args, kwargs, 1, "kernel_size")), _first(_arg(args, kwargs, 4, "stride", 1)),
                _first(_arg(args, kwargs, 2, "dilation", 1)))
    return None


_ADAPTIVE = (F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices)
_GLOBAL = (F.grid_sample, F.multi_head_attention_forward, F.scaled_dot_product_attention,
           # a recurrent layer reading rows (model=rnn): each step mixes a whole row, so its state after any row
           # spans every column; the smallest square holding that band of rows is the whole image
           torch.gru, torch.lstm, torch.rnn_tanh, torch.rnn_relu)
_REDUCE = {"mean", "sum", "amax", "amin", "logsumexp"}


class _Tracer(TorchFunctionMode):
    """Attaches a StageRF (size, jump, whole, offset) to every tensor a forward pass makes; an op without a
    window passes on the union of its tensor inputs' fields (add, cat: the widest branch; batch norm, reshape:
    unchanged); explicit padding (`F.pad`) moves the offset."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side
        self.info: dict[int, tuple[torch.Tensor, StageRF]] = {}  # id → (tensor kept alive, field)

    def field(self, t: torch.Tensor) -> StageRF | None:
        entry = self.info.get(id(t))
        return entry[1] if entry is not None and entry[0] is t else None

    def mark(self, t: torch.Tensor, rf: StageRF) -> None:
        self.info[id(t)] = (t, StageRF(max(self.side, rf.size), rf.jump, True) if rf.whole else rf)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        fields = [rf for rf in map(self.field, inputs) if rf is not None]
        if not fields:
            return out
        rf = self.step(func, args, kwargs, inputs[0], out, _union(fields))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.mark(t, rf)
        return out

    def step(self, func, args, kwargs, x: torch.Tensor, out, rf: StageRF) -> StageRF:
        window = _window(func, args, kwargs)
        if window is None and func in _ADAPTIVE and x.dim() == 4:
            first = out[0] if isinstance(out, tuple) else out
            (h, w), (oh, ow) = x.shape[-2:], first.shape[-2:]
            if (oh, ow) == (1, 1) and (h, w) != (1, 1):
                return StageRF(rf.size, rf.jump, True)
            window = math.ceil(h / oh), max(1, h // oh), 1
        if window is not None:
            k, stride, dilation = window
            top, left = _padding(func, args, kwargs)
            return StageRF(rf.size + dilation * (k - 1) * rf.jump, rf.jump * stride, rf.whole,
                           (rf.offset[0] - top * rf.jump, rf.offset[1] - left * rf.jump))
        if func is F.pad and x.dim() == 4 and not rf.whole:  # explicit padding (reflect, replicate, ZeroPad2d)
            pad = list(_arg(args, kwargs, 1, "pad"))
            left, top = (pad + [0, 0, 0, 0])[0], (pad + [0, 0, 0, 0])[2]
            return StageRF(rf.size, rf.jump, False, (rf.offset[0] - top * rf.jump, rf.offset[1] - left * rf.jump))
        if func in _GLOBAL:  # resampling or attention: every position; the spacing is the data's, not the grid's
            return StageRF(rf.size, (self.field(x) or rf).jump, True)
        name = getattr(func, "__name__", "")
        if ((func is F.linear and x.dim() == 2)
                or (name in _REDUCE and x.dim() == 4 and _spatial_reduction(x, args, kwargs))):
            return StageRF(rf.size, rf.jump, True)
        return rf


def _union(fields: list[StageRF]) -> StageRF:
    """The field of an op on several tensors (add, cat): every pixel any input sees, the smallest square
    holding all their windows (the widest branch when they share a centre), with the coarsest jump."""
    jump = max(f.jump for f in fields)
    if any(f.whole for f in fields):
        return StageRF(max(f.size for f in fields), jump, True)
    top, left = min(f.offset[0] for f in fields), min(f.offset[1] for f in fields)
    bottom = max(f.offset[0] + f.size for f in fields)
    right = max(f.offset[1] + f.size for f in fields)
    return StageRF(max(bottom - top, right - left), jump, False, (top, left))


def _spatial_reduction(x: torch.Tensor, args: tuple, kwargs: dict) -> bool:
    """A mean/sum/max over a feature map's height or width (or over everything) is a global pooling."""
    dims = _arg(args, kwargs, 1, "dim")
    if dims is None or isinstance(dims, torch.dtype):
        return True
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    return any(int(d) % 4 in (2, 3) for d in dims)


def theoretical_rf(net: nn.Module) -> dict[str, StageRF]:
    """{stage: its theoretical receptive field}, read from one traced forward pass of a zero image, so branches,
    shortcuts and custom layers count exactly as `forward` wires them."""
    x = torch.zeros(1, *net.input_shape, device=next(net.parameters()).device)
    tracer = _Tracer(net.input_shape[-1])
    tracer.mark(x, StageRF(1, 1, False))
    fields: dict[str, StageRF] = {}
    with evaluating(net), torch.no_grad(), tracer:
        for name, stage in net.named_stages():
            y = stage(x)
            fields[name] = tracer.field(y) or tracer.field(x)
            x = y
    return fields


def local_rf(net: nn.Module) -> dict[str, StageRF]:
    """{stage: the field of its units on the map of the stage before it (the input, for the first)}: each stage
    traced alone on a zero map of its input's shape, so `unit_window(local_rf(net)[stage], r, c, <that map's
    side>)` is the window of the stage below that unit (r, c) reads."""
    shapes = net.stage_shapes()
    fields: dict[str, StageRF] = {}
    below = tuple(net.input_shape)
    device = next(net.parameters()).device
    with evaluating(net), torch.no_grad():
        for name, stage in net.named_stages():
            x = torch.zeros(1, *below, device=device)
            tracer = _Tracer(below[-1] if len(below) == 3 else 1)
            tracer.mark(x, StageRF(1, 1, len(below) != 3))
            with tracer:
                y = stage(x)
            fields[name] = tracer.field(y) or tracer.field(x)
            below = shapes[name]
    return fields


def fit_gaussian(weights: np.ndarray) -> tuple[float, tuple[float, float]]:
    """σ and centre (row, column) of the isotropic 2-D Gaussian with the moments of a non-negative map:
    the weighted centre, and σ² = Σ w·r² / (2 Σ w) (half the mean squared distance, one per axis)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return float("nan"), ((w.shape[0] - 1) / 2, (w.shape[1] - 1) / 2)
    rows, cols = np.indices(w.shape)
    cy, cx = (w * rows).sum() / total, (w * cols).sum() / total
    var = (w * ((rows - cy) ** 2 + (cols - cx) ** 2)).sum() / (2 * total)
    return float(math.sqrt(var)), (float(cy), float(cx))


def effective_rf(net: nn.Module, x: torch.Tensor, stages: Iterable[str] | None = None) -> dict[str, StageERF]:
    """{stage: effective RF} for stages with feature maps (vectors and tokens are skipped): the gradient of the
    centre unit (summed over channels) w.r.t. the input, |·| averaged over images and input channels. Images
    are independent in eval mode (the caller's), so one backward through the batch's summed centres suffices;
    parameters' `.grad` is never touched."""
    wanted = None if stages is None else set(stages)
    named = [(n, s) for n, s in net.named_stages()]
    last = max((i for i, (n, _) in enumerate(named) if wanted is None or n in wanted), default=-1)
    device = next(net.parameters()).device
    x = x.detach().to(device).clone().requires_grad_(True)
    result: dict[str, StageERF] = {}
    with torch.enable_grad():
        h = x
        for i, (name, stage) in enumerate(named[: last + 1]):
            h = stage(h)
            if h.dim() != 4 or (wanted is not None and name not in wanted):
                continue
            centre = h[:, :, h.shape[-2] // 2, h.shape[-1] // 2].sum()
            (grad,) = torch.autograd.grad(centre, x, retain_graph=i < last, allow_unused=True)
            grad = torch.zeros_like(x) if grad is None else grad
            grad_map = grad.detach().abs().mean(dim=(0, 1)).double().cpu().numpy()
            total = grad_map.sum()
            grad_map = grad_map / total if total > 0 else grad_map
            sigma, centre_at = fit_gaussian(grad_map)
            result[name] = StageERF(sigma, centre_at, grad_map)
    return result


def _outline(image: np.ndarray, top: int, left: int, bottom: int, right: int, box: tuple[int, int, int, int]) -> None:
    """A 1-pixel rectangle (inclusive corners) clamped into its cell `box`: a field wider than the image
    frames the whole cell."""
    top, bottom = min(max(top, box[0]), box[2]), min(max(bottom, box[0]), box[2])
    left, right = min(max(left, box[1]), box[3]), min(max(right, box[1]), box[3])
    image[[top, bottom], left:right + 1] = OUTLINE
    image[top:bottom + 1, [left, right]] = OUTLINE


def erf_picture(erfs: Mapping[str, StageERF], rfs: Mapping[str, StageRF]) -> Picture:
    """One cell per spatial stage: the ERF map in viridis (0 … its maximum), the theoretical RF as a red
    square centred on the ERF's centre (clamped to the image: a frame round the cell once it is wider)."""
    names = list(erfs)
    if not names:
        return Picture("receptive_field/erf", np.full((MIN_CELL, MIN_CELL, 3), 255, np.uint8),
                       "Effective receptive fields: this model has no stage with feature maps.")
    maps = [erfs[n].grad_map / erfs[n].grad_map.max() if erfs[n].grad_map.max() > 0 else erfs[n].grad_map
            for n in names]
    h, w = maps[0].shape
    scale = upscale_for(h)
    columns = grid_shape(len(maps))[1]
    image = colourise(tile(maps, columns, scale), "viridis")
    for i, name in enumerate(names):
        top, left = cell_origin(i, (h, w), columns, scale)
        box = (top, left, top + h * scale - 1, left + w * scale - 1)
        size = rfs[name].size if name in rfs else w
        cy, cx = erfs[name].centre
        y0, x0 = round(cy - (size - 1) / 2), round(cx - (size - 1) / 2)  # first input pixel of the square
        _outline(image, top + y0 * scale, left + x0 * scale, top + (y0 + size) * scale - 1,
                 left + (x0 + size) * scale - 1, box)
    stages = "; ".join(f"{n}: RF {rfs[n].size if n in rfs else '?'} px, ERF σ {erfs[n].sigma:.2g} px" for n in names)
    caption = (f"Effective receptive fields (Luo et al. 2016): |∂ centre unit / ∂ input| over the input, averaged "
               f"over the images, one viridis scale per stage (0 … max); red square: the theoretical RF, centred on "
               f"the ERF (a frame round the cell once wider than the image). {stages}.")
    return Picture("receptive_field/erf", image, caption)


def rf_numbers(rfs: Mapping[str, StageRF], erfs: Mapping[str, StageERF]) -> dict[str, float]:
    """Flat numbers to log: the theoretical RF of every stage, the ERF σ of every spatial stage."""
    numbers = {f"receptive_field/theoretical/{name}": float(rf.size) for name, rf in rfs.items()}
    numbers.update({f"receptive_field/erf_sigma/{name}": float(erf.sigma) for name, erf in erfs.items()})
    return numbers

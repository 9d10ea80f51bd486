"""What the explorer page asks of a run, as JSON-ready dicts: every stage's values for an input, one unit (its
receptive field, filter, top dataset examples, and its value under shifts of the input), the runs' images.
Arrays travel as base64 little-endian float32; a bad request raises BadRequest with the reason."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.explore.runs import ExploreRun
from cnnlab.models.base import evaluating
from cnnlab.pictures.activations import stage_outputs
from cnnlab.probes.receptive_field import unit_window

SHIFTS = tuple(range(-4, 5))  # pixels the input is moved by, along each axis, for a unit's shift curve
EXAMPLES = 6                   # top dataset examples shown per unit


class BadRequest(ValueError):
    """A request the page (or anyone) sent with a malformed value: the reason goes back as HTTP 400."""


def encode(values: torch.Tensor | np.ndarray) -> str:
    array = np.ascontiguousarray(np.asarray(values, dtype="<f4")).ravel()
    return base64.b64encode(array.tobytes()).decode("ascii")


def decode_image(run: ExploreRun, text: Any) -> torch.Tensor:
    """The raw (C, H, W) image the page sent: base64 float32 of exactly the model's input size, finite, in
    [0, 1]."""
    shape = run.input_shape
    if not isinstance(text, str):
        raise BadRequest(f"input must be a base64 string of {math.prod(shape)} float32 pixels (C×H×W = "
                         f"{'×'.join(map(str, shape))}), got {type(text).__name__}")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BadRequest("input is not valid base64") from None
    if len(data) != 4 * math.prod(shape):
        raise BadRequest(f"input holds {len(data) // 4} float32 values and run '{run.label}' takes "
                         f"{math.prod(shape)} (C×H×W = {'×'.join(map(str, shape))})")
    image = torch.from_numpy(np.frombuffer(data, dtype="<f4").copy()).view(*shape)
    if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise BadRequest("input pixels must be finite and in [0, 1]")
    return image


def maps_of(y: torch.Tensor) -> tuple[torch.Tensor, str]:
    """One image's stage output as (units, h, w) maps and how the page draws it: a feature map as is; ViT
    tokens on a square grid as one map per feature; anything else as a vector of (features, 1, 1)."""
    if y.dim() == 3:
        return y, "maps"
    if y.dim() == 2 and math.isqrt(y.shape[0]) ** 2 == y.shape[0]:
        side = math.isqrt(y.shape[0])
        return y.T.reshape(y.shape[1], side, side), "maps"
    return y.reshape(-1, 1, 1), "vector"


def run_info(index: int, run: ExploreRun, images: int) -> dict[str, Any]:
    shapes = run.stage_shapes()
    loaded = run.load_images(images)
    stages = []
    for name, shape in shapes.items():
        maps, kind = maps_of(torch.zeros(shape))
        rf = run.rf[name]
        stages.append({"name": name, "shape": list(maps.shape), "kind": kind, "output_shape": list(shape),
                       "rf": {"size": rf.size, "jump": rf.jump, "whole": rf.whole, "offset": list(rf.offset)}})
    return {"id": index, "label": run.label, "dir": str(run.run.dir), "model": run.run.config.get("model", {}).get(
                "name"), "dataset": run.run.dataset, "input_shape": list(run.input_shape),
            "classes": run.class_names, "drawable": run.input_shape[0] == 1, "stages": stages,
            "images": int(loaded.raw.shape[0]), "probe": loaded.probe, "labels": loaded.labels,
            "images_error": loaded.error, "checkpoint": str(run.checkpoint)}


def forward(run: ExploreRun, raw: torch.Tensor) -> dict[str, Any]:
    """Every stage's values for one raw image, and the class probabilities, from the run's own network."""
    with evaluating(run.net), torch.no_grad():
        outputs = stage_outputs(run.net, run.normalise(raw).unsqueeze(0))
    stages = []
    for name, y in outputs:
        maps, kind = maps_of(y[0])
        stages.append({"name": name, "shape": list(maps.shape), "kind": kind, "values": encode(maps),
                       "min": float(maps.min()), "max": float(maps.max())})
    probs = torch.softmax(outputs[-1][1][0].flatten(), dim=0)
    return {"stages": stages, "probs": encode(probs)}


def _stage_index(run: ExploreRun, stage: Any) -> int:
    names = list(run.stage_shapes())
    if stage not in names:
        raise BadRequest(f"stage {stage!r} is not a stage of run '{run.label}'; its stages: {', '.join(names)}")
    return names.index(stage)


def _whole(value: Any, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < upper:
        raise BadRequest(f"{name} must be a whole number in 0..{upper - 1}, got {value!r}")
    return value


def unit(run: ExploreRun, stage: Any, channel: Any, row: Any, col: Any, raw: torch.Tensor,
         images: int) -> dict[str, Any]:
    """Unit (channel, row, col) of a stage: its window on the input and on the stage below, its filter, its top
    dataset examples and its value as the input shifts."""
    index = _stage_index(run, stage)
    shape = run.stage_shapes()[stage]
    maps, kind = maps_of(torch.zeros(shape))
    channel = _whole(channel, "channel", maps.shape[0])
    row, col = _whole(row, "row", maps.shape[1]), _whole(col, "col", maps.shape[2])
    side = run.input_shape[-2:]
    box = unit_window(run.rf[stage], row, col, tuple(side))
    names = list(run.stage_shapes())
    below_name = names[index - 1] if index else None
    below_shape = maps_of(torch.zeros(run.stage_shapes()[below_name]))[0].shape if below_name else None
    below_box = (unit_window(run.below[stage], row, col, tuple(below_shape[-2:])) if below_name
                 else box)
    return {"stage": stage, "channel": channel, "row": row, "col": col, "kind": kind,
            "input_box": list(box), "below": below_name, "below_box": list(below_box),
            "whole": run.rf[stage].whole, "rf_size": run.rf[stage].size,
            "filter": _filter(run.net.stages[stage], maps.shape[0], channel, below_shape),
            "examples": _examples(run, stage, channel, images),
            "shifts": _shift_curve(run, index, channel, row, col, raw, kind)}


def _filter(stage: nn.Module, units: int, channel: int, below_shape) -> dict[str, Any] | None:
    """The weights that make the unit's channel: the stage's last conv or linear layer with one output per unit
    (None where no single layer does, e.g. an inception block's concatenated branches)."""
    layer = None
    for module in stage.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.shape[0] == units:
            layer = module
    if layer is None:
        return None
    w = layer.weight.detach()[channel].float()
    if w.dim() == 1:  # a dense unit: its weights over the stage below, laid out as that stage's maps
        fits = below_shape is not None and math.prod(below_shape) == w.numel()
        w = w.view(*below_shape) if fits else w.view(1, 1, -1)
    else:
        w = w.reshape(-1, *w.shape[-2:])
    return {"layer": type(layer).__name__, "shape": list(w.shape), "values": encode(w),
            "min": float(w.min()), "max": float(w.max())}


def _examples(run: ExploreRun, stage: str, channel: int, images: int) -> dict[str, Any]:
    """The validation crops that drive the unit's channel hardest (computed once per run)."""
    from cnnlab.pictures.dataset_examples import top_examples

    loaded = run.load_images(images)
    if loaded.error or loaded.raw.shape[0] == 0:
        return {"items": [], "note": loaded.error or "no validation images"}
    if run.examples is None:
        run.examples = top_examples(run.net, run.normalise(loaded.raw), loaded.labels, channels=1 << 30,
                                    k=EXAMPLES)
    ex = run.examples[stage]
    if channel not in ex.channels:
        return {"items": [], "note": f"silent: this channel never changed on the {loaded.raw.shape[0]} "
                                     "validation images"}
    r = ex.channels.index(channel)
    items = []
    for image, value, window in zip(ex.images[r], ex.values[r], ex.windows[r]):
        top, left, bottom, right = (int(v) for v in window)
        crop = loaded.raw[int(image), :, top:bottom, left:right]
        label = loaded.labels[int(image)]
        items.append({"image": int(image), "value": float(value), "window": [top, left, bottom, right],
                      "label": run.class_names[label] if 0 <= label < len(run.class_names) else str(label),
                      "png": png(crop)})
    return {"items": items, "note": f"of the first {loaded.raw.shape[0]} validation images"}


def png(image: torch.Tensor, cell: int = 56) -> str:
    """A (C, h, w) image in [0, 1] as a PNG data URL, scaled up by whole pixels to about `cell` pixels."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    if array.shape[2] != 3:
        array = np.repeat(array.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    scale = max(1, cell // max(array.shape[:2]))
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def shifted(raw: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The image moved by (dy, dx) pixels, zeros (black) where it leaves nothing."""
    out = torch.zeros_like(raw)
    h, w = raw.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        raw[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _shift_curve(run: ExploreRun, index: int, channel: int, row: int, col: int, raw: torch.Tensor,
                 kind: str) -> dict[str, Any]:
    """The unit's value with the input moved by each of SHIFTS pixels across, then down: one batch."""
    batch = torch.stack([shifted(raw, 0, s) for s in SHIFTS] + [shifted(raw, s, 0) for s in SHIFTS])
    with evaluating(run.net), torch.no_grad():
        outputs = stage_outputs_until(run.net, run.normalise(batch), index)
    values = torch.stack([maps_of(y)[0][channel, row, col] for y in outputs])
    n = len(SHIFTS)
    return {"shifts": list(SHIFTS), "across": values[:n].tolist(), "down": values[n:].tolist()}


def stage_outputs_until(net: nn.Module, x: torch.Tensor, index: int) -> list[torch.Tensor]:
    """Stage `index`'s output for each image of the batch (the stages after it are not run)."""
    for i, (_, stage) in enumerate(net.named_stages()):
        x = stage(x)
        if i == index:
            return list(x)
    raise IndexError(index)


def image(run: ExploreRun, index: Any, images: int) -> dict[str, Any]:
    loaded = run.load_images(images)
    if loaded.error:
        raise BadRequest(loaded.error)
    index = _whole(index, "index", loaded.raw.shape[0])
    label = loaded.labels[index]
    return {"index": index, "shape": list(loaded.raw.shape[1:]), "values": encode(loaded.raw[index]),
            "label": label, "class": run.class_names[label] if 0 <= label < len(run.class_names) else str(label)}

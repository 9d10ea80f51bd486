"""Dataset examples (Zeiler & Fergus 2014, fig. 2): the exact input window of one unit (`unit_window`) against the
gradient support of that unit in every zoo model and in hand-built nets with odd padding; a planted blob that one
channel detects (the right images, strongest first, cropped on the blob, white past the border); and the pictures'
shape and caption for RGB and grey input on every zoo model."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.errors import CnnlabError
from cnnlab.models import StagedModel, create_model, list_models
from cnnlab.pictures.dataset_examples import dataset_examples
from cnnlab.pictures.render import GAP, cell_origin, upscale_for
from cnnlab.probes.receptive_field import StageRF, theoretical_rf, unit_window

CLASSES = [f"class{i}" for i in range(10)]


class Chain(StagedModel):
    """One stage per layer, so every intermediate window can be checked."""

    def __init__(self, layers: list[nn.Module], size: int = 20) -> None:
        super().__init__("chain", (1, size, size))
        for i, layer in enumerate(layers, start=1):
            self.add_stage(f"s{i}", layer)


def tiny(name: str, channels: int = 1) -> StagedModel:
    """A small, fast instance: 32 px where five poolings or LeNet-5 need it (or for RGB), else 28."""
    size = 32 if channels == 3 or name == "lenet5" or name.startswith("vgg") else 28
    options = {"densenet": {"depth": 10}, "resnet20": {"depth": 8}, "vit": {"depth": 1},
               "simple_cnn": {"depth": 2}}.get(name, {})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        try:
            return create_model(name, num_classes=10, in_channels=channels, image_size=size, width=4, **options)
        except CnnlabError as err:
            if "has no width knob" not in str(err):
                raise
            return create_model(name, num_classes=10, in_channels=channels, image_size=size, **options)


# --- unit windows against gradient support -------------------------------------------------------------------


def _arg(args, kwargs, index, name, default):
    return args[index] if len(args) > index else kwargs.get(name, default)


class AveragePools(TorchFunctionMode):
    """Max pooling passes the gradient to one pixel per window, so its support would be narrower than what the
    unit can see; average pooling over the same window (kernel, stride, padding, ceil mode) passes it to all."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.max_pool2d:
            assert _arg(args, kwargs, 4, "dilation", 1) in (1, (1, 1)), "no dilated max pooling in these nets"
            k = _arg(args, kwargs, 1, "kernel_size", None)
            return F.avg_pool2d(args[0], k, _arg(args, kwargs, 2, "stride", None) or k,
                                _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 5, "ceil_mode", False))
        if func in (F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices):
            return F.adaptive_avg_pool2d(args[0], _arg(args, kwargs, 1, "output_size", None))
        return func(*args, **kwargs)


def positive_copy(net: nn.Module) -> nn.Module:
    """A float64 copy in eval mode where no gradient can vanish: every parameter positive (weights scaled to sum to
    about one per output), batch norm statistics (0, 1), so with a positive input every pre-activation is positive
    and every activation (ReLU, GELU, tanh...) has a positive slope there. Each pixel's gradient is then a sum of
    positive path products: non-zero exactly where some path reaches the unit."""
    net = copy.deepcopy(net).double().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)
            if p.dim() >= 2:
                p /= p[0].numel()
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return net


def probe_units(y: torch.Tensor) -> list[tuple[int, int]]:
    """The four corners, the centre and one off-centre unit of a map (or of a square token grid)."""
    h, w = y.shape[-2:] if y.dim() == 4 else (math.isqrt(y.shape[1]),) * 2
    return sorted({(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2), (min(1, h - 1), min(2, w - 1))})


def unit_value(y: torch.Tensor, image: int, row: int, col: int) -> torch.Tensor:
    """One unit summed over channels (the window is the stage's, the union over its channels)."""
    if y.dim() == 4:
        return y[image, :, row, col].sum()
    return y[image, row * math.isqrt(y.shape[1]) + col, :].sum()


def assert_windows_match_gradient_support(net: StagedModel) -> int:
    """For every local stage, every probe unit: the bounding box of the pixels its gradient reaches is
    `unit_window` (both empty for a unit that sees only padding). Returns the number of units checked."""
    rfs = theoretical_rf(net)
    side = tuple(net.input_shape[-2:])
    positive = positive_copy(net)
    shapes = net.stage_shapes()
    jobs = []  # (stage, row, col) per image of one batch: one forward and one backward for the whole model
    for name, _ in net.named_stages():
        if rfs[name].whole or len(shapes[name]) == 1:
            continue
        y = torch.zeros(1, *shapes[name])
        jobs += [(name, r, c) for r, c in probe_units(y)]
    if not jobs:
        return 0
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(len(jobs), *net.input_shape, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    total, done = 0, 0
    with AveragePools():
        h = x
        for name, stage in positive.named_stages():
            h = stage(h)
            mine = [(r, c) for n, r, c in jobs if n == name]  # the next rows of the batch, jobs being in stage order
            total = total + sum(unit_value(h, i, r, c) for i, (r, c) in enumerate(mine))
            h, done = h[len(mine):], done + len(mine)  # later stages only run the images still needed
            if done == len(jobs):
                break
    (grad,) = torch.autograd.grad(total, x)
    support = grad.abs().sum(dim=1) > 0
    for i, (name, r, c) in enumerate(jobs):
        rows, cols = np.nonzero(support[i].numpy())
        found = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) if rows.size else None
        top, left, bottom, right = unit_window(rfs[name], r, c, side)
        expected = (top, left, bottom, right) if bottom > top and right > left else None
        assert found == expected, f"{name} unit ({r}, {c}): gradient reaches {found}, unit_window says {expected}"
    return len(jobs)


@pytest.mark.parametrize("model", list_models())
def test_unit_windows_are_the_gradient_support_in_every_zoo_model(model):
    net = tiny(model)
    checked = assert_windows_match_gradient_support(net)
    local = [n for n, rf in theoretical_rf(net).items() if not rf.whole]
    # stn resamples the whole image first; rnn reads whole rows from its first step
    assert checked >= len(local) and (local or model in ("mlp", "stn", "rnn"))


@pytest.mark.parametrize("pooling", ["avg", "lp", "stride", "blur", "sum"])
def test_unit_windows_follow_every_pooling(pooling):
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=4,
                       pooling=pooling, kernel_size=4)  # an even kernel: 'same'-style padding 2 grows the map
    assert assert_windows_match_gradient_support(net) > 0


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_unit_windows_follow_odd_padding():
    net = Chain([
        nn.Conv2d(1, 2, 1, padding=2),                           # the outer two rings see nothing but padding
        nn.Conv2d(2, 2, 4, padding="same"),                      # pads 1 before, 2 after
        nn.Conv2d(2, 2, 3, padding=2, dilation=2),               # dilated, still dense after the conv before
        nn.Sequential(nn.ZeroPad2d((2, 0, 1, 0)), nn.Conv2d(2, 2, 3)),  # left 2, top 1: rows and columns differ
        nn.Conv2d(2, 2, 3, stride=2, padding=1, padding_mode="reflect"),
        nn.AvgPool2d(3, 2, padding=1),
        nn.Conv2d(2, 2, 3, padding="valid"),
    ])
    rfs = theoretical_rf(net)
    assert [rfs[f"s{i}"].offset for i in range(1, 5)] == [(-2, -2), (-3, -3), (-5, -5), (-6, -7)]
    assert unit_window(rfs["s1"], 0, 0, 20) == (0, 0, 0, 0) and unit_window(rfs["s1"], 2, 3, 20) == (0, 1, 1, 2)
    units = sum(len(probe_units(torch.zeros(1, *shape))) for shape in net.stage_shapes().values())
    assert assert_windows_match_gradient_support(net) == units


def test_unit_window_clips_to_the_image_and_keeps_whole_stages_whole():
    rf = StageRF(10, 4, offset=(-3, -3))
    assert rf == StageRF(10, 4)  # the offset is where the field lies, not part of its identity
    assert unit_window(rf, 0, 0, 28) == (0, 0, 7, 7)
    assert unit_window(rf, 2, 3, 28) == (5, 9, 15, 19)
    assert unit_window(rf, 7, 6, (28, 24)) == (25, 21, 28, 24)
    assert unit_window(StageRF(28, 4, True), 3, 1, (28, 24)) == (0, 0, 28, 24)


# --- a planted pattern ------------------------------------------------------------------------------------------

SIDE = 24
BLOBS = [((12, 12), 1.0), ((6, 17), 0.9), ((1, 8), 0.8), ((18, 5), 0.7), ((12, 20), 0.6), ((20, 20), 0.5)]


class BlobNet(StagedModel):
    """Channel 0 is a 5×5 positive bump filter (fires on bright blobs, most at their centre); channel 1 is its
    negative (silent after the ReLU on a black background); then a 2×2 average pool and a global max."""

    def __init__(self) -> None:
        super().__init__("blobs", (1, SIDE, SIDE))
        conv = nn.Conv2d(1, 2, 5, padding=2)
        bump = torch.outer(torch.tensor([1.0, 2, 4, 2, 1]), torch.tensor([1.0, 2, 4, 2, 1])) / 16
        with torch.no_grad():
            conv.weight.copy_(torch.stack([bump, -bump]).unsqueeze(1))
            conv.bias.zero_()
        self.add_stage("detect", nn.Sequential(conv, nn.ReLU()))
        self.add_stage("pool", nn.AvgPool2d(2))
        self.add_stage("score", nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()))


def blob_images() -> torch.Tensor:
    """Black images, one 3×3 blob each: image i at BLOBS[i]'s centre and brightness, shuffled so the strongest is
    not simply the first."""
    images = torch.zeros(len(BLOBS), 1, SIDE, SIDE)
    for i, ((r, c), b) in enumerate(BLOBS):
        images[i, 0, r - 1:r + 2, c - 1:c + 2] = b
    return images


def caption_values(caption: str) -> dict[int, list[float]]:
    rows = re.findall(r"ch (\d+): ([^;]+?)(?:;|\.$)", caption)
    return {int(c): [float(v) for v in re.findall(r"(-?[\d.]+(?:e[-+]?\d+)?) \(", values)] for c, values in rows}


def test_a_planted_blob_detector_shows_the_brightest_blobs_cropped_on_them():
    order = [3, 0, 5, 2, 1, 4]
    images = blob_images()[order]
    labels = torch.tensor(order)
    pictures, data = dataset_examples(BlobNet(), images, labels, CLASSES, channels=2, k=4, batch=4)
    assert [p.key for p in pictures] == ["examples/detect", "examples/pool", "examples/score"]
    detect = data["detect"]
    assert detect.channels == [0] and detect.silent == 1  # the negative channel never fires
    assert detect.labels[0].tolist() == [0, 1, 2, 3]  # brightest blobs first, each image once
    assert detect.images[0].tolist() == [order.index(i) for i in range(4)]
    assert [tuple(p) for p in detect.positions[0]] == [blob for blob, _ in BLOBS[:4]]
    assert [tuple(w) for w in detect.windows[0]] == [(max(r - 2, 0), c - 2, r + 3, c + 3) for (r, c), _ in BLOBS[:4]]
    bump = torch.outer(torch.tensor([1.0, 2, 4, 2, 1]), torch.tensor([1.0, 2, 4, 2, 1])) / 16
    peak = float(bump[1:4, 1:4].sum())  # the response at a blob's centre, per unit of brightness
    assert detect.values[0] == pytest.approx([b * peak for _, b in BLOBS[:4]])

    caption = pictures[0].caption
    values = caption_values(caption)
    assert list(values) == [0] and values[0] == sorted(values[0], reverse=True)
    assert values[0] == pytest.approx([float(f"{v:.3g}") for v in detect.values[0]])
    assert "(class0), " in caption and "5×5 px" in caption and "1 of its channels never vary" in caption

    image = pictures[0].image  # one row of four 5×5 crops, each enlarged `scale` times
    scale = upscale_for(5)
    assert image.shape == (5 * scale, 4 * 5 * scale + 3 * GAP, 3)
    assert np.all(image[2 * scale: 3 * scale, 2 * scale: 3 * scale] == 255)  # the blob's centre, at the crop's centre
    assert np.all(image[:scale, :scale] == 0)  # the crop's corner: black background
    top, left = cell_origin(2, (5, 5), 4, scale)  # the blob at row 1: one row of its window lies above the image
    assert np.all(image[top:top + scale, left:left + 5 * scale] == 255)  # padded white
    assert np.all(image[top + scale:top + 2 * scale, left:left + scale] == 0)  # image row 0 beside the blob: black
    assert np.all(image[top + 2 * scale:top + 3 * scale, left + 2 * scale:left + 3 * scale] == round(0.8 * 255))

    pool = data["pool"]  # 2×2 average of the detector: a 6-pixel window every 2 pixels, still on the blob
    assert pool.rf == StageRF(6, 2) and pool.rf.offset == (-2, -2)
    assert pool.labels[0].tolist() == [0, 1, 2, 3]
    for (top, left, bottom, right), ((cy, cx), _) in zip(pool.windows[0], BLOBS):
        assert top <= cy < bottom and left <= cx < right and (bottom - top, right - left) in ((6, 6), (4, 6))

    score = data["score"]  # a vector: every unit sees the whole image, the crops are whole images
    assert not score.local and score.channels == [0]
    assert all(tuple(w) == (0, 0, SIDE, SIDE) for w in score.windows[0])
    assert score.values[0] == pytest.approx(pool.values[0])  # the global max of the pooled map
    assert pictures[2].image.shape[0] == SIDE * upscale_for(SIDE)
    assert "whole 24×24 image" in pictures[2].caption


def test_the_running_top_k_does_not_depend_on_the_batch_size():
    g = torch.Generator().manual_seed(3)
    images = torch.rand(23, 1, 28, 28, generator=g)
    net = tiny("simple_cnn")
    _, small = dataset_examples(net, images, None, None, channels=3, k=5, batch=4)
    _, large = dataset_examples(net, images, None, None, channels=3, k=5, batch=256)
    for name in small:
        assert small[name].channels == large[name].channels
        for field in ("images", "positions", "values", "windows"):
            np.testing.assert_allclose(getattr(small[name], field), getattr(large[name], field))
        assert (small[name].labels == -1).all()


# --- pictures -----------------------------------------------------------------------------------------------------


def check_pictures(net: StagedModel, channels: int, k: int, n: int = 12) -> tuple[list, dict]:
    c, h, w = net.input_shape
    g = torch.Generator().manual_seed(2)
    images = torch.rand(n, c, h, w, generator=g)
    labels = torch.arange(n) % 10
    was = net.training
    pictures, data = dataset_examples(net, images, labels, CLASSES, channels=channels, k=k, batch=5)
    assert net.training == was
    stages = [name for name, _ in net.named_stages()]
    assert [p.key for p in pictures] == [f"examples/{s}" for s in stages] and list(data) == stages
    for picture in pictures:
        ex = data[picture.key.split("/", 1)[1]]
        rows = len(ex.channels)
        assert 1 <= rows <= channels and ex.images.shape == (rows, k) and ex.windows.shape == (rows, k, 4)
        assert all(len(set(row)) == k for row in ex.images.tolist())  # each image at most once per row
        assert np.all(np.diff(ex.values, axis=1) <= 0) and np.all(np.diff(ex.values[:, 0]) <= 0)
        assert np.all(ex.labels == ex.images % 10)
        cell_h = min(ex.rf.size, h) if ex.local else h
        cell_w = min(ex.rf.size, w) if ex.local else w
        scale = upscale_for(cell_h)
        assert picture.image.dtype == np.uint8
        assert picture.image.shape == (rows * cell_h * scale + (rows - 1) * GAP, k * cell_w * scale + (k - 1) * GAP, 3)
        assert np.all(ex.windows[..., 2] - ex.windows[..., 0] <= cell_h)
        assert all(f"ch {ch}: " in picture.caption for ch in ex.channels)
        assert list(caption_values(picture.caption)) == ex.channels
        assert f"{ex.rf.size}×{ex.rf.size} px" in picture.caption if ex.local else "whole" in picture.caption
    return pictures, data


def test_rgb_pictures_are_in_colour_with_one_row_per_channel():
    net = tiny("simple_cnn", channels=3)
    pictures, data = check_pictures(net, channels=3, k=4)
    block1 = pictures[0]
    assert data["block1"].rf == StageRF(4, 2) and len(data["block1"].channels) == 3
    assert "in colour" in block1.caption and "Dataset examples, block1" in block1.caption
    rgb = block1.image.astype(int)
    assert np.any(rgb[..., 0] != rgb[..., 1])  # random colour images stay in colour


def test_grey_pictures_are_grey():
    pictures, data = check_pictures(tiny("lenet5"), channels=2, k=3)
    assert all(np.all(p.image[..., 0] == p.image[..., 1]) and np.all(p.image[..., 1] == p.image[..., 2])
               for p in pictures)
    assert "in grey" in pictures[0].caption and data["block2"].rf == StageRF(16, 4)
    assert not data["fc1"].local and "whole 32×32 image" in pictures[2].caption


@pytest.mark.parametrize("model", list_models())
def test_every_zoo_model_draws_its_examples(model):
    check_pictures(tiny(model), channels=2, k=3, n=6)


def test_a_stage_that_never_fires_says_so_instead_of_drawing_noise():
    pictures, data = dataset_examples(BlobNet(), torch.zeros(3, 1, SIDE, SIDE), [1, 2, 3], CLASSES, k=5)
    assert all(ex.channels == [] and ex.silent == 2 and ex.images.shape == (0, 3) for ex in data.values())
    assert all(np.all(p.image == 255) and "all silent" in p.caption for p in pictures)

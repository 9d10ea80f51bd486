"""Receptive fields: the theoretical RF against hand-computed answers (stacked convs, poolings, LeNet-5, simple_cnn,
branching models), the effective RF of one conv against its kernel's support, the Gaussian fit against a known σ."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import StagedModel, create_model, list_models
from cnnlab.probes.receptive_field import (
    StageRF,
    effective_rf,
    erf_picture,
    fit_gaussian,
    local_rf,
    rf_numbers,
    theoretical_rf,
    unit_window,
)


class Chain(StagedModel):
    """One stage per layer, so every intermediate field can be checked."""

    def __init__(self, layers: list[nn.Module], size: int = 64, channels: int = 1) -> None:
        super().__init__("chain", (channels, size, size))
        for i, layer in enumerate(layers, start=1):
            self.add_stage(f"s{i}", layer)


def sizes(net: nn.Module) -> list[int]:
    return [rf.size for rf in theoretical_rf(net).values()]


def tiny(name: str, **options) -> StagedModel:
    size = 32 if name == "lenet5" or name.startswith("vgg") else 28
    try:
        return create_model(name, num_classes=10, in_channels=1, image_size=size, width=4, **options)
    except CnnlabError as err:
        if "has no width knob" not in str(err):
            raise
        return create_model(name, num_classes=10, in_channels=1, image_size=size, **options)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_n_stacked_3x3_convs_see_2n_plus_1_pixels(n):
    net = Chain([nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)])
    assert sizes(net) == [2 * i + 1 for i in range(1, n + 1)]
    assert all(rf.jump == 1 and not rf.whole for rf in theoretical_rf(net).values())


def test_dilation_widens_the_kernel_to_dilation_times_k_minus_1_plus_1():
    net = Chain([nn.Conv2d(1, 1, 3, padding=2, dilation=2) for _ in range(3)])
    assert sizes(net) == [5, 9, 13]  # 1 + n·2·(3 − 1)
    net = Chain([nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=4, dilation=4)])
    assert sizes(net) == [3, 11]
    net = Chain([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(3, 1, padding=1, dilation=2)])
    assert sizes(net) == [3, 7]


class SpatialMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


def test_adaptive_pooling_is_a_window_unless_it_pools_to_one_position():
    net = Chain([nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(4), nn.AdaptiveMaxPool2d(1)], size=16)
    assert list(theoretical_rf(net).values()) == [StageRF(3, 1), StageRF(6, 4), StageRF(16, 4, True)]
    net = Chain([nn.Conv2d(1, 1, 3, padding=1), SpatialMean()], size=16)
    assert theoretical_rf(net)["s2"] == StageRF(16, 1, True)


def test_conv_and_pool_chains_compound_the_strides():
    net = Chain([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2, 2),
                 nn.Conv2d(1, 1, 3, padding=1), nn.LPPool2d(2, 2), nn.Conv2d(1, 1, 3, stride=2)])
    rfs = list(theoretical_rf(net).values())
    assert [rf.size for rf in rfs] == [3, 4, 8, 10, 18, 22, 38]
    assert [rf.jump for rf in rfs] == [1, 2, 2, 4, 4, 8, 16]


def test_lenet5_by_hand():
    rfs = theoretical_rf(create_model("lenet5", num_classes=10, in_channels=1, image_size=32))
    # conv 5 → 5, pool 2/2 → 6 (jump 2); conv 5 → 6 + 4·2 = 14, pool 2/2 → 16 (jump 4); then FC sees everything
    assert rfs["block1"] == StageRF(6, 2, False)
    assert rfs["block2"] == StageRF(16, 4, False)
    assert all(rfs[name] == StageRF(32, 4, True) for name in ("fc1", "fc2", "logits"))


@pytest.mark.parametrize("model", ["simple_cnn", "locally_connected"])
def test_simple_cnn_by_hand(model):
    net = create_model(model, num_classes=10, in_channels=1, image_size=28, depth=3, width=4, pooling="max")
    rfs = theoretical_rf(net)
    # each block: conv 3 (+2·jump) then pool 2/2 (+1·jump), jump doubles: 4, 10, 22
    assert [rfs[f"block{i}"] for i in (1, 2, 3)] == [StageRF(4, 2), StageRF(10, 4), StageRF(22, 8)]
    assert rfs["gap"].whole and rfs["gap"].size == 28 and rfs["logits"].whole


@pytest.mark.parametrize("pooling, expected", [("avg", [4, 10]), ("sum", [4, 10]), ("lp", [4, 10]),
                                               ("stride", [4, 10]), ("blur", [6, 16]), ("none", [3, 5])])
def test_every_pooling_counts_its_window(pooling, expected):
    # blur: max 2 stride 1 (+1), then the 3×3 stride-2 low-pass (+2): conv 3 → 4 → 6, then 6 + 4 + 2 + 4 = 16
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=4, pooling=pooling)
    assert sizes(net)[:2] == expected


def test_branching_models_take_the_widest_branch_without_compounding_shortcuts():
    rfs = theoretical_rf(tiny("googlenet"))
    # stem 3; an inception adds its 5×5 branch (4·jump): 7, 11; pool 3/2 → 13; 4a..4e +8 each → 53; pool → 57; +16 each
    assert [rf.size for rf in rfs.values()][:12] == [3, 7, 11, 13, 21, 29, 37, 45, 53, 57, 73, 89]
    rfs = theoretical_rf(tiny("resnet20"))
    # stem 3; 6 convs → 15; learned 2/2 pool → 16 (jump 2), 6 convs → 40; pool → 42 (jump 4), 6 convs → 90
    assert [rfs[n].size for n in ("stem", "layer1", "layer2", "layer3")] == [3, 15, 40, 90]
    assert rfs["layer3"].jump == 4 and rfs["gap"].whole


def test_attention_and_dense_layers_see_the_whole_image():
    vit = theoretical_rf(tiny("vit", depth=2))
    assert vit["patch_embed"] == StageRF(4, 4, False)
    assert all(rf.whole and rf.size == 28 for name, rf in vit.items() if name != "patch_embed")
    assert all(rf.whole for rf in theoretical_rf(tiny("mlp")).values())
    stn = theoretical_rf(tiny("stn"))
    assert stn["transform"] == StageRF(28, 1, True)  # the affine grid comes from the whole image


@pytest.mark.parametrize("model", list_models())
def test_every_model_has_a_field_for_every_stage_growing_with_depth(model):
    net = tiny(model)
    was = net.training
    rfs = theoretical_rf(net)
    side = net.input_shape[-1]
    assert list(rfs) == [name for name, _ in net.named_stages()]
    assert net.training == was
    sizes = [rf.size for rf in rfs.values()]
    assert sizes == sorted(sizes) and sizes[0] >= 1  # never shrinks, even where it passes the image side
    wholes = [rf.whole for rf in rfs.values()]
    assert wholes == sorted(wholes) and wholes[-1]
    assert all(rf.size >= side for rf in rfs.values() if rf.whole)


def test_the_erf_of_one_conv_is_its_kernel_support():
    conv = nn.Conv2d(2, 3, 5, padding=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    net = Chain([conv], size=15, channels=2).eval()
    x = torch.randn(4, 2, 15, 15, generator=g)
    erf = effective_rf(net, x)["s1"]
    assert erf.grad_map.shape == (15, 15) and erf.grad_map.sum() == pytest.approx(1.0)
    inside = np.zeros((15, 15), bool)
    inside[5:10, 5:10] = True  # 5×5 around the centre unit (7, 7)
    assert np.all(erf.grad_map[~inside] == 0) and np.all(erf.grad_map[inside] > 0)
    assert 0 < erf.sigma < 5
    assert erf.centre == pytest.approx((7, 7), abs=1)
    assert conv.weight.grad is None and not x.requires_grad


def test_erf_skips_vector_and_token_stages_and_honours_the_stage_list():
    net = tiny("simple_cnn", depth=2).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert list(effective_rf(net, x)) == ["block1", "block2"]
    assert list(effective_rf(net, x, stages=["block2"])) == ["block2"]
    assert effective_rf(tiny("vit", depth=1).eval(), x) == {}


def test_the_gaussian_fit_recovers_a_known_sigma():
    rows, cols = np.indices((61, 61))
    for sigma, (cy, cx) in ((2.0, (30, 30)), (4.5, (27.5, 33))):
        w = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * sigma ** 2))
        fitted, centre = fit_gaussian(w / w.sum())
        assert fitted == pytest.approx(sigma, rel=0.03)
        assert centre == pytest.approx((cy, cx), abs=0.05)


def test_erf_picture_and_numbers():
    with torch.random.fork_rng():  # fixed weights, so no dead centre unit by chance; the global RNG is left as it was
        torch.manual_seed(0)
        net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=3, width=8).eval()
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    rfs, erfs = theoretical_rf(net), effective_rf(net, x)
    picture = erf_picture(erfs, rfs)
    assert picture.key == "receptive_field/erf"
    assert picture.image.dtype == np.uint8 and picture.image.ndim == 3 and picture.image.shape[2] == 3
    assert all(f"{name}: RF {rfs[name].size} px, ERF σ" in picture.caption for name in erfs)
    assert "gap" not in erfs
    numbers = rf_numbers(rfs, erfs)
    assert numbers["receptive_field/theoretical/block3"] == 22.0
    assert numbers["receptive_field/theoretical/logits"] == 28.0
    assert set(k for k in numbers if "erf_sigma" in k) == {f"receptive_field/erf_sigma/block{i}" for i in (1, 2, 3)}
    assert all(isinstance(v, float) for v in numbers.values())
    sigmas = [numbers[f"receptive_field/erf_sigma/block{i}"] for i in (1, 2, 3)]
    assert sigmas == sorted(sigmas)


@pytest.mark.parametrize("model", ["simple_cnn", "resnet20", "googlenet", "densenet", "vgg11", "lenet5"])
def test_a_units_window_on_the_stage_below_holds_everything_it_depends_on(model):
    """local_rf (the explorer's box on the stage below): over a batch of random maps, the gradient of the units at
    one position reaches nothing of the stage below outside unit_window, with padding, pooling and branches."""
    torch.manual_seed(0)
    net = tiny(model).eval()
    below = local_rf(net)
    x = torch.randn(16, *net.input_shape)
    for name, stage in net.named_stages():
        y = stage(x)
        if x.dim() == 4 and y.dim() == 4 and not below[name].whole:
            h = x.detach().requires_grad_(True)
            out = stage(h)
            r, c = out.shape[-2] // 2, out.shape[-1] // 3
            out[:, :, r, c].sum().backward()
            support = h.grad.abs().sum(dim=(0, 1)) > 0
            top, left, bottom, right = unit_window(below[name], r, c, tuple(x.shape[-2:]))
            inside = torch.zeros_like(support)
            inside[top:bottom, left:right] = True
            assert support[inside].any() and not support[~inside].any(), (name, (top, left, bottom, right))
        x = y.detach()

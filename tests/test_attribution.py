"""Grad-CAM and guided backprop: each equals its textbook definition computed by hand, and a model where a
method does not apply loses that row with the reason in the caption."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models import create_model
from cnnlab.pictures.attribution import attribution_picture, gradcam_map, gradcam_stage, guided_backprop_map


@pytest.fixture
def simple_cnn():
    torch.manual_seed(0)
    return create_model("simple_cnn", num_classes=10, in_channels=3, image_size=16, width=4).double().eval()


def test_gradcam_is_the_relu_of_gradient_weighted_maps_upsampled(simple_cnn):
    x, target = torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([0, 4, 9])
    name, shape = gradcam_stage(simple_cnn, x)
    assert name == "block3" and shape[1:] == (2, 2)
    stages = list(simple_cnn.named_stages())
    maps = x
    for stage_name, stage in stages:
        maps = stage(maps)
        if stage_name == name:
            break
    maps = maps.detach().requires_grad_(True)
    y = maps
    for _, stage in stages[[n for n, _ in stages].index(name) + 1:]:
        y = stage(y)
    (grad,) = torch.autograd.grad(y.gather(1, target.view(-1, 1)).sum(), maps)
    by_hand = F.relu((grad.mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    by_hand = F.interpolate(by_hand, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    np.testing.assert_allclose(gradcam_map(simple_cnn, x, target, name), by_hand.detach().numpy(), atol=1e-12)


def guided_relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU whose backward passes only positive gradient where the input was positive (Springenberg et al.)."""

    class Guided(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t.clamp_min(0)

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g.clamp_min(0) * (t > 0)

    return Guided.apply(x)


def test_guided_backprop_rectifies_the_gradient_at_every_relu():
    torch.manual_seed(1)
    net = create_model("simple_cnn", num_classes=3, in_channels=1, image_size=8, width=4, depth=2).double().eval()
    x, target = torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.tensor([2, 0])

    # by hand: the same forward pass, with each ReLU module replaced by the guided one
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert relus
    originals = {m: m.forward for m in relus}
    for m in relus:
        m.forward = guided_relu
    xg = x.clone().requires_grad_(True)
    (by_hand,) = torch.autograd.grad(net(xg).gather(1, target.view(-1, 1)).sum(), xg)
    for m, forward in originals.items():
        m.forward = forward
    (plain,) = torch.autograd.grad(net(xg).gather(1, target.view(-1, 1)).sum(), xg)

    guided = guided_backprop_map(net, x, target)
    np.testing.assert_allclose(guided, by_hand.numpy(), atol=1e-12)
    assert not np.allclose(guided, plain.numpy())  # it is not the plain gradient under another name


@pytest.mark.parametrize(("model", "activation", "rows", "reasons"), [
    ("simple_cnn", "relu", 5, []),
    ("simple_cnn", "tanh", 4, ["No guided backprop: it rectifies the gradient at each ReLU, and this simple_cnn "
                               "has none (its activation is Tanh)"]),
    ("mlp", "relu", 4, ["No Grad-CAM: it weighs the feature maps of a conv stage, and mlp's stages output "
                        "vectors, not feature maps"]),
    ("vit", "native", 3, ["No Grad-CAM", "vit's stages output tokens", "No guided backprop", "GELU"]),
])
def test_a_method_that_does_not_apply_is_refused_by_name(model, activation, rows, reasons):
    options = {} if model == "vit" else {"width": 4}
    net = create_model(model, num_classes=10, in_channels=3, image_size=32, activation=activation, **options).eval()
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    picture, maps = attribution_picture(net, x, y, ["a", "b", "c"], patch=8, stride=8)
    cell = 32 * 2 + 2  # cells of 32 px are drawn twice as large, 2 px apart
    assert picture.image.shape[0] == rows * cell - 2
    assert len(maps) == rows - 1
    for reason in reasons:
        assert reason in picture.caption
    if not reasons:
        assert "Grad-CAM at block3" in picture.caption and "guided backprop" in picture.caption

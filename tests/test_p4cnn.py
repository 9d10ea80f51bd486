"""model=p4cnn: p4 group convolutions (Cohen & Welling 2016) are exactly equivariant to 90° turns, and the
network's prediction exactly invariant to them, as the rotation question's counter-example needs."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.layers.p4 import ROTATIONS, P4Conv
from cnnlab.models import create_model


def turn(x: torch.Tensor, quarters: int = 1) -> torch.Tensor:
    return torch.rot90(x, quarters, dims=(-2, -1))


def stage_outputs(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for name, stage in net.named_stages():
        x = out[name] = stage(x)
    return out


def turn_p4(y: torch.Tensor) -> torch.Tensor:
    """The group's action on a folded p4 map: every rotation slice turned by 90°, the rotation axis shifted by 1."""
    b, folded, h, w = y.shape
    shifted = torch.roll(y.view(b, folded // ROTATIONS, ROTATIONS, h, w), 1, dims=2)
    return turn(shifted.reshape(b, folded, h, w))


@pytest.mark.parametrize("lift", [True, False])
def test_a_p4_conv_commutes_with_a_quarter_turn(lift):
    torch.manual_seed(0)
    conv = P4Conv(3, 5, 3, lift=lift, padding=1).double()
    x = torch.randn(2, 3 if lift else 3 * ROTATIONS, 12, 12, dtype=torch.float64)
    turned_in = turn(x) if lift else turn_p4(x)
    assert torch.allclose(conv(turned_in), turn_p4(conv(x)), atol=1e-12)
    assert conv.weight.shape == (5, 3 if lift else 3 * ROTATIONS, 3, 3)  # only the free weights are parameters
    assert conv(x).shape == (2, 5 * ROTATIONS, 12, 12)


@pytest.mark.parametrize("pooling", ["max", "avg", "blur", "none"])
def test_p4cnn_is_equivariant_stage_by_stage_and_invariant_at_the_output(pooling):
    torch.manual_seed(0)
    net = create_model("p4cnn", num_classes=10, in_channels=1, image_size=32, pooling=pooling, width=4).double()
    net.eval()
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        plain, turned = stage_outputs(net, x), stage_outputs(net, turn(x))
    for stage in ("block1", "block2", "block3"):
        assert torch.allclose(turned[stage], turn_p4(plain[stage]), atol=1e-10), stage
    assert torch.allclose(turned["rotation_pool"], turn(plain["rotation_pool"]), atol=1e-10)
    logits = [net(turn(x, q)) for q in range(4)]
    for other in logits[1:]:
        assert torch.allclose(other, logits[0], atol=1e-10)
    # a plain CNN with the same blocks is not: the same check fails for simple_cnn
    cnn = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=32, pooling=pooling, width=8).double()
    assert not torch.allclose(cnn(turn(x)), cnn(x), atol=1e-3)


def test_p4cnn_width_16_matches_simple_cnn_width_32_in_parameters():
    count = {name: sum(p.numel() for p in create_model(name, num_classes=10, in_channels=1, image_size=28).parameters())
             for name in ("p4cnn", "simple_cnn")}
    assert count == {"p4cnn": 93_066, "simple_cnn": 93_962}


@pytest.mark.parametrize("options, says", [
    ({"kernel_size": 4}, "needs an odd model.kernel_size"),
    ({"norm": "batch"}, "takes model.norm=null only"),
])
def test_p4cnn_refuses_what_would_break_equivariance(options, says):
    with pytest.raises(CnnlabError, match=says):
        create_model("p4cnn", num_classes=10, in_channels=1, image_size=28, **options)

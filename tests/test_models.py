"""Models: LeNet-5 is the seed's, pooling and activation reach every layer, bad settings fail clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import ACTIVATIONS, POOLINGS
from cnnlab.models import create_model, list_models

POOL_TYPES = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, "none": nn.Identity}
ACT_TYPES = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
             "sigmoid": nn.Sigmoid, "identity": nn.Identity}


def test_lenet5_is_the_seed_architecture():
    net = create_model("lenet5", num_classes=10, in_channels=1, image_size=32)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 6, (5, 5), (1, 1)), (6, 16, (5, 5), (1, 1))]
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride or p.kernel_size) for p in pools] == [(2, 2), (2, 2)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in linears] == [(16 * 5 * 5, 120), (120, 100), (100, 10)]
    assert net.stage_shapes() == {"block1": (6, 14, 14), "block2": (16, 5, 5), "fc1": (120,), "fc2": (100,),
                                  "logits": (10,)}
    assert sum(p.numel() for p in net.parameters()) == 63_802


@pytest.mark.parametrize("model", list_models())
@pytest.mark.parametrize("pooling", POOLINGS.names())
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_pooling_and_activation_reach_every_layer(model, pooling, activation):
    net = create_model(model, num_classes=10, in_channels=1, image_size=32, pooling=pooling, activation=activation)
    blocks = [m for name, m in net.named_modules() if name.endswith(".pool")]
    acts = [m for name, m in net.named_modules() if name.endswith(".act")]
    assert blocks and all(type(m) is POOL_TYPES[pooling] for m in blocks)
    assert acts and all(type(m) is ACT_TYPES[activation] for m in acts)
    out = net(torch.randn(2, 1, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(CnnlabError, match=r"Unknown model 'lenet'.*lenet5, simple_cnn.*Did you mean 'lenet5'"):
        create_model("lenet", num_classes=10, in_channels=1, image_size=32)
    with pytest.raises(CnnlabError, match=r"Unknown pooling 'maxx'.*avg, max, none"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, pooling="maxx")
    with pytest.raises(CnnlabError, match=r"Unknown activation 'rleu'.*identity.*relu.*tanh"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, activation="rleu")


def test_shrinking_below_one_pixel_names_the_layer_and_sizes():
    with pytest.raises(CnnlabError) as err:
        create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=6)
    msg = str(err.value)
    assert "stage 'block5'" in msg and "receives a 1×1 map" in msg
    assert "input 28×28 → block1 14×14 → block2 7×7 → block3 3×3 → block4 1×1" in msg
    assert "at most 4" in msg and "pooling=none" in msg
    with pytest.raises(CnnlabError, match=r"lenet5.*stage 'block2' \(conv 5×5 stride 1 \+ max pool 2×2 stride 2\)"
                                          r" receives a 4×4 map"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=12)
    # the same depth fits without pooling
    assert create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=6, pooling="none")


def test_knobs_a_model_lacks_are_refused_not_ignored():
    with pytest.raises(CnnlabError, match=r"'lenet5' has no depth knob.*model.depth=4"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, depth=4)
    with pytest.raises(CnnlabError, match=r"'lenet5' has no option\(s\) model.kernel_size"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, kernel_size=3)


def test_a_rejected_option_names_the_valid_ones():
    from cnnlab.layers import make_activation, make_pooling

    with pytest.raises(CnnlabError, match=r"pooling 'max' rejects options \{'kernel': 3\}.*Its options: kernel_size, "
                                          r"stride\."):
        make_pooling({"name": "max", "kernel": 3}, channels=4)
    with pytest.raises(CnnlabError, match=r"activation 'relu' rejects options \{'slope': 1\}.*It takes no options\."):
        make_activation({"name": "relu", "slope": 1})
    with pytest.raises(CnnlabError, match=r"the activation config has no `name`; pick one with activation=<name>"):
        make_activation({"negative_slope": 0.1})

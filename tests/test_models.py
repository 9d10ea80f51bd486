"""Models: every architecture takes every pooling and activation, keeps the one contract, and fails clearly."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import ACTIVATIONS, POOLINGS, make_activation, make_pooling
from cnnlab.layers.locally_connected import LocallyConnected2d
from cnnlab.models import MODELS, create_model, list_models
from cnnlab.models.registry import CONTRACT

INPUTS = [(1, 28), (3, 32)]
# Every activation type a factory can make (identity makes none).
ACTIVATION_TYPES = tuple({type(make_activation(name)) for name in ACTIVATIONS.names()} - {nn.Identity})
TORCH_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)
# The two heaviest models' rows of the pooling × activation grid (~30 s on 2 CPU cores) run in `make test` only;
# `make check` still builds and runs them in the contract, config and picture tests.
HEAVY = {"googlenet", "densenet"}


def tiny(name: str, **options):
    """The model at width 4 where it has a width knob, so the full cross product stays fast on a CPU."""
    try:
        return create_model(name, num_classes=10, width=4, **options)
    except CnnlabError as err:
        if "has no width knob" not in str(err):
            raise
        return create_model(name, num_classes=10, **options)


def pooling_sites(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if hasattr(m, "pooling_name")]


def test_lenet5_is_the_seed_architecture():
    net = create_model("lenet5", num_classes=10, in_channels=1, image_size=32)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 6, (5, 5), (1, 1)), (6, 16, (5, 5), (1, 1))]
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2), (2, 2)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in linears] == [(16 * 5 * 5, 120), (120, 100), (100, 10)]
    assert net.stage_shapes() == {"block1": (6, 14, 14), "block2": (16, 5, 5), "fc1": (120,), "fc2": (100,),
                                  "logits": (10,)}
    assert sum(p.numel() for p in net.parameters()) == 63_802


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in HEAVY else m for m in list_models()])
@pytest.mark.parametrize("pooling", POOLINGS.names())
@pytest.mark.parametrize("activation", ACTIVATIONS.names())
def test_every_model_takes_every_pooling_and_activation(model, pooling, activation):
    """Builds, runs forward and backward on 1×28×28 and 3×32×32, with the chosen pooling at every pooling
    site and the chosen activation everywhere — or refuses with one of the clear errors."""
    for channels, size in INPUTS:
        try:
            net = tiny(model, in_channels=channels, image_size=size, pooling=pooling, activation=activation)
        except CnnlabError as err:
            refused_pooling = pooling != "none" and any(why in str(err) for why in (
                "has no feature maps to pool", "has no pooling: its capsules replace it"))
            refused_activation = "has no activation to choose" in str(err)  # rnn: torch's GRU/LSTM has its own
            shrunk = f"model '{model}' shrinks the feature map below 1×1: stage '" in str(err) and pooling != "none"
            assert refused_pooling or refused_activation or shrunk, str(err)
            continue
        out = net(torch.randn(2, channels, size, size))
        out.sum().backward()
        assert out.shape == (2, 10)
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad), \
            "a parameter is not on the forward path"

        sites = pooling_sites(net)
        assert all(site.pooling_name == pooling for site in sites)
        inside_sites = {id(m) for site in sites for m in site.modules()}
        assert all(id(m) in inside_sites for m in net.modules() if isinstance(m, TORCH_POOLS)), "hard-coded pooling"

        acts = [m for m in net.modules() if isinstance(m, ACTIVATION_TYPES)]
        expected = type(make_activation(activation))
        assert all(type(m) is expected for m in acts), {type(m).__name__ for m in acts}
        assert acts or activation == "identity"


@pytest.mark.parametrize("model", list_models())
def test_every_model_keeps_the_one_contract_and_lists_its_stages(model):
    params = inspect.signature(MODELS.get(model)).parameters
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in CONTRACT)
    net = create_model(model, num_classes=7, in_channels=3, image_size=32)
    stages = net.named_stages()
    shapes = net.stage_shapes()
    assert [name for name, _ in stages] == list(shapes) and len(stages) >= 3
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        h = x
        for name, stage in stages:  # the stages, run by hand, are the model
            h = stage(h)
            assert tuple(h.shape[1:]) == shapes[name], name
        assert torch.allclose(h, net(x))
    assert shapes[stages[-1][0]] == (7,)
    # depth and width are either knobs or refused by name, never silently ignored
    for knob in ("depth", "width"):
        try:
            create_model(model, num_classes=7, in_channels=3, image_size=32, **{knob: 2})
        except CnnlabError as err:
            assert f"model.{knob}" in str(err)


def test_native_means_each_architectures_own_choice():
    def sites(name: str) -> set[str]:
        return {s.pooling_name for s in pooling_sites(tiny(name, in_channels=1, image_size=32))}

    assert sites("lenet5") == sites("alexnet") == sites("vgg16") == sites("googlenet") == {"max"}
    assert sites("resnet18") == sites("resnet20") == {"stride"} and sites("densenet") == {"avg"}
    assert sites("mlp") == sites("vit") == sites("capsnet") == sites("rnn") == set()
    assert any(isinstance(m, nn.GELU) for m in tiny("vit", in_channels=1, image_size=28).modules())
    assert not any(isinstance(m, nn.GELU) for m in tiny("resnet20", in_channels=1, image_size=28).modules())


def test_locally_connected_has_simple_cnn_shapes_and_many_times_its_parameters():
    for options in ({}, {"depth": 2, "width": 16, "kernel_size": 5}, {"pooling": "none", "depth": 2}):
        shared = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, **options)
        local = create_model("locally_connected", num_classes=10, in_channels=1, image_size=28, **options)
        assert local.stage_shapes() == shared.stage_shapes()
        count = [sum(p.numel() for p in net.parameters()) for net in (shared, local)]
        assert count[1] > 20 * count[0], count


def test_a_locally_connected_layer_with_one_shared_filter_is_a_convolution():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    local = LocallyConnected2d(3, 5, 3, (9, 9), padding=1)
    with torch.no_grad():
        local.weight.copy_(conv.weight.reshape(5, -1).expand_as(local.weight))
        local.bias.copy_(conv.bias[:, None].expand_as(local.bias))
    x = torch.randn(4, 3, 9, 9)
    assert torch.allclose(local(x), conv(x), atol=1e-5)


def conv_stack(pooling: str, activation: str) -> nn.Module:
    torch.manual_seed(0)
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, pooling=pooling,
                       activation=activation).eval()
    return nn.Sequential(*[stage for name, stage in net.named_stages() if name.startswith("block")])


@pytest.mark.parametrize("pooling", ["avg", "sum", "stride", "none"])
def test_without_a_nonlinearity_the_conv_stack_is_linear(pooling):
    """f(a·x + b·y) = a·f(x) + b·f(y) for g = f − f(0) (the biases make f affine); ReLU breaks it."""
    x, y = torch.randn(2, 4, 1, 28, 28, dtype=torch.float64)

    def deviation(f: nn.Module) -> float:
        f = f.double()
        with torch.no_grad():
            zero = f(torch.zeros_like(x))
            g = lambda v: f(v) - zero  # noqa: E731
            lhs, rhs = g(2.5 * x - 0.7 * y), 2.5 * g(x) - 0.7 * g(y)
        return ((lhs - rhs).abs().max() / rhs.abs().max()).item()

    assert deviation(conv_stack(pooling, "identity")) < 1e-12
    assert deviation(conv_stack(pooling, "relu")) > 1e-2


@pytest.mark.parametrize("model", [m for m in list_models() if m not in ("mlp", "vit", "capsnet", "rnn")])
def test_pooling_none_keeps_the_spatial_size(model):
    sizes = []
    net = tiny(model, in_channels=3, image_size=32, pooling="none")
    for site in pooling_sites(net):
        site.register_forward_hook(lambda m, args, out: sizes.append((args[0].shape[-2:], out.shape[-2:])))
    net(torch.randn(1, 3, 32, 32))
    assert sizes and all(before == after for before, after in sizes)


def test_simple_cnn_without_pooling_stays_at_full_resolution():
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=6, pooling="none")
    assert [shape[1:] for name, shape in net.stage_shapes().items() if name.startswith("block")] == [(28, 28)] * 6


def test_blur_pooling_is_closer_to_shift_invariant_than_max(mnist_digits):
    """Zhang 2019: shift real digits by one pixel. Blur pooling's output changes less than max pooling's, and
    its mean (what a global-average-pool head sees) hardly changes at all, because the blur removes aliasing."""
    digits, shifted = mnist_digits[:128], torch.roll(mnist_digits[:128], 1, dims=-1)
    blur, plain = make_pooling("blur", 1), make_pooling("max", 1)

    def map_change(pool: nn.Module) -> float:
        a, b = pool(digits), pool(shifted)
        return ((a - b).norm() / a.norm()).item()

    def mean_change(pool: nn.Module) -> float:
        a, b = pool(digits).mean((1, 2, 3)), pool(shifted).mean((1, 2, 3))
        return ((a - b).abs() / a).mean().item()

    with torch.no_grad():
        assert map_change(blur) < 0.8 * map_change(plain), (map_change(blur), map_change(plain))
        assert mean_change(blur) < 0.02 * mean_change(plain), (mean_change(blur), mean_change(plain))


def test_pooling_layers_compute_what_their_names_say():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert make_pooling("sum", 1)(x).flatten().tolist() == [0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13,
                                                            10 + 11 + 14 + 15]
    lp = make_pooling({"name": "lp", "p": 2}, 1)(x)
    assert torch.allclose(lp[0, 0, 0, 0], torch.tensor([0.0, 1, 4, 5]).norm())
    assert make_pooling("stride", 4).weight.shape == (4, 4, 2, 2)  # learned, channels → channels
    window = make_pooling({"name": "max", "kernel_size": 3, "stride": None}, 1, 2, 2)
    assert (window.kernel_size, window.stride) == (3, 2)  # the config's non-null values override the model's
    # ... except where the architecture needs its own window: an inception branch must keep the map's size
    net = create_model("googlenet", num_classes=10, in_channels=1, image_size=28, width=8,
                       pooling={"name": "avg", "kernel_size": 2, "stride": 2})
    assert net(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    assert net.stage_shapes()["pool3"][1:] == (15, 15)  # 2×2 stride 2 with GoogLeNet's padding 1: (28+2−2)/2+1


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(CnnlabError, match=r"Unknown model 'lenet'.*alexnet.*lenet5.*vit.*Did you mean 'lenet5'"):
        create_model("lenet", num_classes=10, in_channels=1, image_size=32)
    with pytest.raises(CnnlabError, match=r"Unknown pooling 'maxx'.*avg, blur, lp, max, native, none, stride, sum"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, pooling="maxx")
    with pytest.raises(CnnlabError, match=r"Unknown activation 'rleu'.*identity.*native.*relu.*tanh"):
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
    with pytest.raises(CnnlabError, match=r"'vgg16'.*stage 'block5' \(conv 3×3 stride 1 \+ conv 3×3 stride 1 \+ "
                                          r"conv 3×3 stride 1 \+ blur pool 2×2 stride 2\) receives a 1×1 map"):
        create_model("vgg16", num_classes=10, in_channels=1, image_size=28, pooling="blur")
    with pytest.raises(CnnlabError, match=r"'stn'.*stage 'transform' \(conv 7×7 stride 1 \+ max pool 2×2 stride 2"):
        create_model("stn", num_classes=10, in_channels=1, image_size=12)
    # the same depth fits without pooling
    assert create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=6, pooling="none")


def test_knobs_a_model_lacks_are_refused_not_ignored():
    with pytest.raises(CnnlabError, match=r"'lenet5' has no depth knob.*model.depth=4"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, depth=4)
    with pytest.raises(CnnlabError, match=r"'lenet5' has no option\(s\) model.kernel_size"):
        create_model("lenet5", num_classes=10, in_channels=1, image_size=32, kernel_size=3)
    with pytest.raises(CnnlabError, match=r"'mlp' has no feature maps to pool.*pooling=max does not apply.*"
                                          r"pooling=native or pooling=none"):
        create_model("mlp", num_classes=10, in_channels=1, image_size=28, pooling="max")
    with pytest.raises(CnnlabError, match=r"'resnet20' needs model.depth = 6n\+2.*got 21.*8, 14, 20"):
        create_model("resnet20", num_classes=10, in_channels=1, image_size=28, depth=21)
    with pytest.raises(CnnlabError, match=r"'vit' needs model.image_size divisible by model.patch_size.*30.*4"):
        create_model("vit", num_classes=10, in_channels=1, image_size=30)
    with pytest.raises(CnnlabError, match=r"model.width must be a whole number ≥ 1, got 0\. model 'simple_cnn' uses"):
        create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, width=0)


def test_a_rejected_option_names_the_valid_ones():
    with pytest.raises(CnnlabError, match=r"pooling 'max' rejects options .*'kernel': 3.*Its options: kernel_size, "
                                          r"stride, padding\."):
        make_pooling({"name": "max", "kernel": 3}, channels=4)
    with pytest.raises(CnnlabError, match=r"activation 'relu' rejects options \{'slope': 1\}.*It takes no options\."):
        make_activation({"name": "relu", "slope": 1})
    with pytest.raises(CnnlabError, match=r"the activation config has no `name`; pick one with activation=<name>"):
        make_activation({"negative_slope": 0.1})


def test_cnnlab_models_lists_each_models_stages_and_shapes(capsys, monkeypatch):
    from cnnlab.zoo import main

    def rows(out: str) -> dict[str, list[str]]:
        cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
        return {row[0]: row[1:] for row in cells}

    monkeypatch.setenv("COLUMNS", "120")
    assert main(["lenet5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lenet5: 63,802 parameters, input 1×32×32")
    assert rows(out) == {"block1": ["6×14×14", "156"], "block2": ["16×5×5", "2,416"], "fc1": ["120", "48,120"],
                         "fc2": ["100", "12,100"], "logits": ["10", "1,010"]}
    assert main(["simple_cnn", "--image-size", "28", "--pooling", "none"]) == 0
    assert rows(capsys.readouterr().out)["block3"][0] == "128×28×28"
    assert main(["lenett"]) == 2
    assert "Unknown model 'lenett'" in capsys.readouterr().err

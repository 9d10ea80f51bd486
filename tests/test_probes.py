"""Probes: each one's maths on cases with a known answer, and a real MNIST run with every probe on that
leaves every number in the W&B summary, the loggers and the run dir."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from torch import nn

from cnnlab.compare import main as compare_main
from cnnlab.errors import CnnlabError
from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.models import create_model
from cnnlab.models.base import StagedModel
from cnnlab.probes.linear_probe import linear_accuracy, linear_probe
from cnnlab.probes.linearity import fold_affine, folded_output, linearity
from cnnlab.probes.rotation import best_rotated_match, filter_rotation_similarity, rotation_accuracy
from cnnlab.probes.translation import circular_shift, shift_robustness
from cnnlab.probes.weight_sharing import unshared_parameters, weight_sharing_numbers
from cnnlab.train import train
from helpers import compose_run


class Staged(StagedModel):
    """A model from plain stages, for known-answer tests."""

    def __init__(self, input_shape: tuple[int, int, int], **stages: nn.Module) -> None:
        super().__init__("test", input_shape)
        for name, stage in stages.items():
            self.add_stage(name, stage)


def gap_only(channels: int = 1, classes: int = 10) -> Staged:
    torch.manual_seed(0)
    return Staged((channels, 28, 28), gap=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                  logits=nn.Linear(channels, classes)).eval()


# --- linear probe ---------------------------------------------------------------------------------------

def test_linear_probe_separates_separable_classes_and_not_random_labels():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 4
    y = torch.arange(800) % 4
    x = centres[y] + torch.randn(800, 16, generator=g)
    random_labels = torch.randint(0, 4, (800,), generator=g)
    acc = linear_probe({"separable": x, "noise": x}, y, 600, 4)
    assert acc["separable"] == 1.0
    chance = linear_accuracy((x[:600], random_labels[:600]), (x[600:], random_labels[600:]), 4)
    assert 0.1 < chance < 0.4  # 4 classes: about 25 %
    assert linear_probe({"again": x}, y, 600, 4)["again"] == acc["separable"]  # deterministic fit


# --- the probes' forward passes ---------------------------------------------------------------------------

def test_the_probes_forward_twin_gives_the_networks_outputs_and_follows_its_weights(mnist_digits):
    """Probes run forward passes through an NHWC copy (faster on CPU convs): the same outputs and stage
    features as the network, refreshed when the weights change, and the network itself where it has no convs."""
    from cnnlab.probes.features import forward_twin, stage_features

    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=8).eval()
    x = mnist_digits[:64]
    twin = forward_twin(net, x)
    assert twin is not net and forward_twin(net, x) is twin  # one copy while the weights stand
    with torch.no_grad():
        assert torch.allclose(twin(x), net(x), atol=1e-5)
        ours, theirs = stage_features(twin, x), stage_features(net, x)
        assert list(ours) == list(theirs) and all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in ours)
        next(net.parameters()).add_(0.5)  # what an optimiser step does: in place
    fresh = forward_twin(net, x)
    assert fresh is not twin
    with torch.no_grad():
        assert torch.allclose(fresh(x), net(x), atol=1e-5) and not torch.allclose(twin(x), net(x), atol=1e-3)
    mlp = create_model("mlp", num_classes=10, in_channels=1, image_size=28).eval()
    assert forward_twin(mlp, x) is mlp


def test_translation_and_rotation_predict_one_turn_once_with_the_same_numbers(mnist_digits):
    """±180° is one turn and shift 0 is no shift: measured once, the numbers equal a prediction per angle/draw."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    from cnnlab.probes.translation import predict

    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=8).eval()
    x, y = mnist_digits[:128], torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(1))
    calls = []
    net.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    accuracy = rotation_accuracy(net, x, y, [-180, -90, 0, 90, 180])
    assert len(calls) == 4
    for angle in (-180, -90, 90, 180):
        turned = TF.rotate(x, float(angle), InterpolationMode.BILINEAR, fill=float(x.amin()))
        assert accuracy[float(angle)] == float((predict(net, turned) == y).double().mean())
    assert accuracy[0.0] == float((predict(net, x) == y).double().mean())
    calls.clear()
    result = shift_robustness(net, x, y, 2, torch.Generator().manual_seed(0))
    assert len(calls) == 5 and result[0][1] == 1.0  # 1 + 2 + 2 predictions, not 6
    g = torch.Generator().manual_seed(0)
    for s in range(3):  # the same draws as one prediction per draw would use
        draws = [torch.randint(-s, s + 1, (len(x),), generator=g) for _ in range(4)]
        first = predict(net, circular_shift(x, draws[0], draws[1]))
        second = predict(net, circular_shift(x, draws[2], draws[3]))
        assert result[s] == (float((first == y).double().mean()), float((first == second).double().mean()))


# --- translation ----------------------------------------------------------------------------------------

def test_circular_shift_is_torch_roll_per_image():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    shifted = circular_shift(x, torch.tensor([1, -2]), torch.tensor([3, 0]))
    assert torch.equal(shifted[0], torch.roll(x[0], (1, 3), dims=(1, 2)))
    assert torch.equal(shifted[1], torch.roll(x[1], (-2, 0), dims=(1, 2)))


def test_global_average_pool_only_model_is_perfectly_consistent_under_circular_shifts(mnist_digits):
    x, y = mnist_digits[:200], torch.randint(0, 10, (200,))
    result = shift_robustness(gap_only(), x, y, max_shift=6, generator=torch.Generator().manual_seed(0))
    assert all(consistency == 1.0 for _, consistency in result.values())
    assert len({acc for acc, _ in result.values()}) == 1  # accuracy does not move with the shift either


def test_max_pooling_cnn_is_not_shift_consistent(mnist_digits):
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=3, width=8).eval()
    labels = torch.zeros(256, dtype=torch.long)
    result = shift_robustness(net, mnist_digits, labels, 3, torch.Generator().manual_seed(0))
    assert result[0][1] == 1.0 and result[3][1] < 1.0


# --- rotation -------------------------------------------------------------------------------------------

def test_filters_that_are_turned_copies_match_perfectly_and_random_ones_do_not():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 1, 5, 5, generator=g)
    turned = torch.cat([base, torch.rot90(base, 1, (2, 3)), torch.rot90(base, 2, (2, 3))])
    assert torch.allclose(best_rotated_match(turned), torch.ones(12, dtype=torch.float64))
    similarity = filter_rotation_similarity(turned, g)
    assert similarity["rotated"] == pytest.approx(1.0)
    assert similarity["random"] < 0.9
    assert best_rotated_match(base, (0,)).max() < 0.99  # unturned, distinct random filters do not match


def test_rotation_accuracy_of_a_rotation_invariant_model_is_flat_at_right_angles(mnist_digits):
    """A GAP-only model sees the same pixels, moved, at 90° turns: its predictions cannot change."""
    x = mnist_digits[:100]
    y = gap_only()(x).argmax(1)
    accuracy = rotation_accuracy(gap_only(), x, y, [-180, -90, 0, 90, 180])
    assert all(v == 1.0 for v in accuracy.values())


# --- linearity ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,options", [
    ("simple_cnn", dict(pooling="avg", depth=3, width=8, norm="batch")),
    ("lenet5", dict(pooling="sum")),
    ("resnet20", dict(pooling="stride", depth=8, width=4)),
])
def test_the_folded_linear_map_equals_the_identity_activation_network(model, options, mnist_digits):
    size = 32 if model == "lenet5" else 28
    net = create_model(model, num_classes=10, in_channels=1, image_size=size, activation="identity", **options)
    with torch.no_grad():  # batch norm with non-trivial running statistics, so eval mode is really affine
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    net.eval()
    x = nn.functional.pad(mnist_digits[:64], [(size - 28) // 2] * 4)
    result = linearity(net, x, torch.zeros(64, dtype=torch.long))
    assert result["relative_diff"] < 1e-10 and result["dtype"] == "torch.float64"  # float32's gap was refolded
    a, b = fold_affine(net.double(), tuple(x.shape[1:]))
    assert torch.allclose(folded_output(a, b, x).float(), net.float()(x), atol=1e-4, rtol=1e-4)


def test_a_relu_network_is_not_one_linear_map(mnist_digits):
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=8).eval()
    result = linearity(net, mnist_digits[:64], torch.zeros(64, dtype=torch.long))
    assert result["relative_diff"] > 1e-3
    assert result["dtype"] == "torch.float32"  # far beyond rounding: the float32 fold answers alone


# --- weight sharing -------------------------------------------------------------------------------------

def test_a_cnn_without_weight_sharing_has_exactly_the_locally_connected_twin_s_parameters():
    kwargs = dict(num_classes=10, in_channels=1, image_size=28, depth=2, width=4)
    cnn, lc = create_model("simple_cnn", **kwargs), create_model("locally_connected", **kwargs)
    assert unshared_parameters(cnn, cnn.input_shape) == sum(p.numel() for p in lc.parameters())
    numbers = weight_sharing_numbers(lc, lc.input_shape, 0.9)
    assert numbers["weight_sharing/sharing_factor"] == 1.0
    assert numbers["weight_sharing/acc_per_mparam"] == pytest.approx(0.9 / (numbers["weight_sharing/params"] / 1e6))


def test_unshared_parameters_of_one_conv_by_hand():
    net = Staged((1, 8, 8), conv=nn.Conv2d(1, 4, 3, padding=1),
                 gap=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    assert unshared_parameters(net, net.input_shape) == (4 * 9 + 4) * 8 * 8


def test_an_rnn_without_weight_sharing_has_its_recurrent_weights_once_per_row():
    net = create_model("rnn", num_classes=10, in_channels=1, image_size=28, depth=2, width=8, cell="lstm")
    recurrent = (4 * 8 * (28 + 8 + 2)) + (4 * 8 * (8 + 8 + 2))  # 2 LSTM layers: 4 gates of (input + hidden + biases)
    assert sum(p.numel() for p in net.parameters()) == recurrent + 8 * 10 + 10
    # read in 4 stages of 7 rows, the same layer throughout: without sharing, a copy for each of the 28 rows
    assert unshared_parameters(net, net.input_shape) == recurrent * 28 + 8 * 10 + 10


# --- a real run with every probe ------------------------------------------------------------------------

STAGES = ("block1", "block2", "block3", "gap", "logits")


@pytest.fixture(scope="module")
def probes_run(tmp_path_factory):
    """simple_cnn on real MNIST, 100 batches, every probe on (and no pictures), W&B offline + CSV."""
    run_dir = tmp_path_factory.mktemp("probes") / "run"
    cfg = compose_run("model=simple_cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=100",
                      "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
                      run_dir=run_dir, logger="[wandb,csv]", callbacks="[base,probes]")
    results = train(cfg)
    GlobalHydra.instance().clear()
    summary = json.loads((run_dir / "probes" / "summary.json").read_text())
    return {"dir": run_dir, "results": results, "summary": summary}


@pytest.mark.slow
def test_every_probe_number_is_in_the_run_dir(probes_run):
    numbers = probes_run["summary"]
    expected = ({f"linear_probe/{s}" for s in ("input", *STAGES, "network")}
                | {f"cka/{k}/{a}~{b}" for k in ("linear", "rbf") for i, a in enumerate(STAGES) for b in STAGES[i + 1:]}
                | {f"receptive_field/theoretical/{s}" for s in STAGES}
                | {f"receptive_field/erf_sigma/block{i}" for i in (1, 2, 3)}
                | {f"translation/{m}/shift{s}" for m in ("acc", "consistency") for s in range(5)}
                | {f"rotation/acc/{a:+d}deg" for a in range(-180, 181, 30)}
                | {f"rotation/filter_similarity{v}" for v in ("", "_unrotated", "_random")}
                | {f"linearity/{k}" for k in ("max_abs_diff", "relative_diff", "network_acc", "folded_acc",
                                              "linear_classifier_acc")}
                | {f"weight_sharing/{k}" for k in ("params", "params_without_sharing", "sharing_factor", "val_acc",
                                                   "acc_per_mparam")}
                | {f"probe_seconds/{p}" for p in ("linear_probe", "cka", "receptive_field", "translation",
                                                  "rotation", "linearity", "weight_sharing")})
    assert expected <= set(numbers), sorted(expected - set(numbers))
    assert all(isinstance(v, float) for v in numbers.values())
    for probe in ("linear_probe", "cka", "receptive_field", "translation", "rotation", "linearity", "weight_sharing"):
        (line,) = (probes_run["dir"] / "probes" / f"{probe}.jsonl").read_text().splitlines()
        record = json.loads(line)
        assert record["tag"] == "final" and record["numbers"].items() <= numbers.items()
    # what the probes cost the run, all told: at least their own timings, and less than the run
    spent = probes_run["results"]["perf/pictures_probes_s"]
    own = sum(v for k, v in numbers.items() if k.startswith("probe_seconds/"))
    assert own <= spent < probes_run["results"]["wall_time_s"], (own, spent)


@pytest.mark.slow
def test_every_probe_number_is_in_the_wandb_summary_and_the_csv(probes_run):
    (wandb_run,) = find_runs(probes_run["dir"])
    summary = read_run(wandb_run)["summary"]
    for key, value in probes_run["summary"].items():
        assert summary[key] == pytest.approx(value), key
    header = (probes_run["dir"] / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert set(probes_run["summary"]) <= set(header)


@pytest.mark.slow
def test_probe_plots_are_published_with_the_pictures(probes_run):
    lines = [json.loads(line) for line in (probes_run["dir"] / "pictures" / "index.jsonl").read_text().splitlines()]
    keys = {line["key"] for line in lines}
    assert {"linear_probe/by_stage", "cka/linear_heatmap", "cka/rbf_heatmap", "receptive_field/erf",
            "translation/by_shift", "rotation/by_angle", "linearity/fold", "weight_sharing/parameters_plot"} <= keys
    assert all((probes_run["dir"] / "pictures" / line["path"]).is_file() for line in lines)


@pytest.mark.slow
def test_the_run_s_numbers_answer_the_questions(probes_run):
    n = probes_run["summary"]
    assert n["linear_probe/logits"] > n["linear_probe/block1"] + 0.1  # features get more linearly separable
    assert n["receptive_field/theoretical/block1"] == 4 and n["receptive_field/theoretical/block3"] == 22
    assert n["translation/consistency/shift0"] == 1.0 > n["translation/consistency/shift4"]
    assert n["rotation/acc/+0deg"] > n["rotation/acc/+90deg"]
    assert n["linearity/relative_diff"] > 1e-3  # ReLU: not one linear map
    assert n["weight_sharing/params"] == 93962 and n["weight_sharing/sharing_factor"] > 50
    assert n["weight_sharing/val_acc"] == pytest.approx(probes_run["results"]["val/best"], abs=1e-6)


@pytest.mark.slow
def test_linear_probe_and_cka_against_another_run_for_mlp_and_vit(probes_run, make_cfg, tmp_path):
    """The MLP's stages compared with the CNN run's (CNN vs MLP), and a ViT's tokens probed linearly."""
    train(make_cfg("model=mlp", f"++callbacks.cka.compare_with={probes_run['dir']}", "callbacks.cka.kinds=[linear]",
                   callbacks="[base,linear_probe,cka]", run_dir=tmp_path / "mlp"))
    numbers = json.loads((tmp_path / "mlp" / "probes" / "summary.json").read_text())
    mlp_stages = [k.split("/")[1] for k in numbers if k.startswith("linear_probe/")]
    assert {"input", "logits", "network"} <= set(mlp_stages) and len(mlp_stages) >= 4
    cross = {k for k in numbers if k.startswith("cka_vs_simple_cnn/linear/")}
    assert len(cross) == (len(mlp_stages) - 2) * len(STAGES)
    assert all(0.0 <= numbers[k] <= 1.0 + 1e-9 for k in cross)
    # cnnlab-cka on the two finished runs gives the same matrix the callback logged
    assert compare_main([str(tmp_path / "mlp"), str(probes_run["dir"]), "--kind", "linear",
                         "--out", str(tmp_path / "cka")]) == 0
    record = json.loads((tmp_path / "cka" / "cka.json").read_text())["matrices"]["linear"]
    assert (tmp_path / "cka" / "cka_linear.png").is_file() and record["columns"] == list(STAGES)
    for a, row in zip(record["rows"], record["values"]):
        for b, value in zip(record["columns"], row):
            assert value == pytest.approx(numbers[f"cka_vs_simple_cnn/linear/{a}~{b}"], abs=1e-5)
    train(make_cfg("model=vit", "model.depth=2", callbacks="[base,linear_probe]", run_dir=tmp_path / "vit"))
    vit = json.loads((tmp_path / "vit" / "probes" / "summary.json").read_text())
    assert "linear_probe/logits" in vit and len([k for k in vit if k.startswith("linear_probe/")]) >= 5


@pytest.mark.parametrize("override,message", [
    ("callbacks.cka.kinds=[cosine]", "callbacks.cka.kinds must be a list drawn from ['linear', 'rbf']"),
    ("callbacks.cka.compare_with=/no/such/run", "callbacks.cka.compare_with=/no/such/run is neither"),
    ("callbacks.translation.max_shift=0", "callbacks.translation.max_shift must be a whole number ≥ 1"),
    ("callbacks.linear_probe.grid=two", "callbacks.linear_probe.grid must be a whole number ≥ 1"),
])
def test_bad_probe_options_are_refused_by_name(make_cfg, override, message):
    with pytest.raises(CnnlabError, match=message.replace("[", r"\[").replace("]", r"\]")):
        train(make_cfg(override, callbacks="[base,probes]"))


def test_cnnlab_cka_refuses_what_it_cannot_compare(tmp_path, capsys):
    assert compare_main([str(tmp_path / "nothing"), str(tmp_path)]) == 2
    assert "RUN_A=" in capsys.readouterr().err

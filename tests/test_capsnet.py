"""model=capsnet (Sabour, Frosst & Hinton 2017) and the loss option it brings (cnnlab.losses): the squash, routing by
agreement (couplings that sum to 1, agreement that rises with the rounds), the margin loss by hand, the reconstruction
decoder's mask, the paper's shapes and parameter counts, pooling refused by name, and a tiny CLI run whose checkpoint
reloads."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from cnnlab.checkpoints import load_checked, load_trained_module
from cnnlab.errors import CnnlabError
from cnnlab.losses import Objective, margin_loss
from cnnlab.models import create_model
from cnnlab.models.capsnet import RECONSTRUCTION_WEIGHT, pixel_target, squash
from cnnlab.module import ImageClassifier
from cnnlab.probes.receptive_field import StageRF, theoretical_rf
from helpers import run_cli


def capsnet(**options):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("capsnet", num_classes=10, in_channels=1, image_size=28, **{"width": 16, **options})


def normalised(digits: torch.Tensor) -> torch.Tensor:
    return (digits - 0.1307) / 0.3081


def test_squash_keeps_the_direction_and_maps_lengths_into_0_1():
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-3, 3, 500, dtype=torch.float64)[:, None]
    s = torch.randn(500, 16, generator=g, dtype=torch.float64) * scales
    v = squash(s)
    length_in, length_out = s.norm(dim=1), v.norm(dim=1)
    assert torch.allclose(F.cosine_similarity(v, s, dim=1), torch.ones(500, dtype=torch.float64))
    assert torch.allclose(length_out, length_in ** 2 / (1 + length_in ** 2))  # Sabour et al. eq. 1
    assert (length_out >= 0).all() and (length_out < 1).all()
    assert (length_out[length_in.argsort()].diff() > 0).all()  # longer in, longer out
    assert length_out.min() < 1e-4 and length_out.max() > 0.999  # short vectors near 0, long ones near 1
    assert torch.equal(squash(torch.zeros(3, 8)), torch.zeros(3, 8))
    # primary capsules: each group of 8 channels at a position is one squashed capsule
    net = capsnet().eval()
    with torch.no_grad():
        caps = net.stages["primary_caps"](torch.randn(2, 16, 20, 20, generator=g))
    lengths = caps.reshape(2, 32, 8, 6, 6).norm(dim=2)
    assert caps.shape == (2, 256, 6, 6) and (lengths < 1).all() and lengths.max() > 0.1


def routed(net, x: torch.Tensor):
    with torch.no_grad():
        u_hat = net.stages["digit_caps"].predictions(net.stages["primary_caps"](net.stages["conv1"](x)))
    return net.stages["digit_caps"], u_hat


def test_coupling_coefficients_sum_to_1_over_the_digit_capsules_for_every_primary_capsule(mnist_digits):
    net = capsnet().eval()
    digit, u_hat = routed(net, normalised(mnist_digits[:8]))
    assert u_hat.shape == (8, 10, 16, 32 * 6 * 6)
    for iterations in (1, 2, 3, 5):
        v, c = digit.route(u_hat * 50, iterations)  # long votes, so routing moves the couplings away from 1/10
        assert c.shape == (8, 1152, 10) and (c >= 0).all()
        assert torch.allclose(c.sum(dim=2), torch.ones(8, 1152))
        if iterations == 1:
            assert torch.allclose(c, torch.full_like(c, 0.1))  # every logit starts at 0
        else:
            assert (c - 0.1).abs().max() > 0.01
    # the stage is routing_iters rounds of exactly this
    with torch.no_grad():
        v, _ = digit.route(u_hat)
        assert torch.allclose(net.stages["digit_caps"](net.stages["primary_caps"](net.stages["conv1"](
            normalised(mnist_digits[:8])))), v.flatten(1))
    assert capsnet(routing_iters=1).stages["digit_caps"].routing_iters == 1


def test_more_routing_iterations_raise_agreement_on_a_fixed_input(mnist_digits):
    """Agreement: each primary capsule's votes û_j|i scored against the digit capsules v_j (û_j|i · v_j, and the
    cosine), weighed by its couplings c_ij. Fixed weights drawn with σ = 0.1: at the init's σ = 0.01 the votes are
    so short (û·v ~ 1e-6) that routing leaves every coupling at about 1/10."""
    net = capsnet().eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        net.stages["digit_caps"].weight.normal_(0, 0.1)
    digit, u_hat = routed(net, normalised(mnist_digits[:32]))
    scalar, cosine, peak = [], [], []
    with torch.no_grad():
        for iterations in range(1, 6):
            v, c = digit.route(u_hat, iterations)
            agreement = torch.einsum("bjdn,bjd->bnj", u_hat, v)
            cos = agreement / (u_hat.norm(dim=2).transpose(1, 2) * v.norm(dim=2)[:, None, :])
            scalar.append(float((c * agreement).sum(dim=2).mean()))
            cosine.append(float((c * cos).sum(dim=2).mean()))
            peak.append(float(c.amax(dim=2).mean()))
    assert all(b > a for a, b in zip(scalar, scalar[1:])), scalar
    assert all(b > a for a, b in zip(cosine, cosine[1:])), cosine
    assert all(b > a for a, b in zip(peak, peak[1:])), peak  # the couplings concentrate on agreeing classes
    assert scalar[2] > 1.2 * scalar[0]


def test_the_margin_loss_on_hand_computed_examples():
    lengths = torch.tensor([[0.95, 0.05, 0.30], [0.50, 0.60, 0.00], [0.00, 0.00, 0.00]])
    target = torch.tensor([0, 0, 2])
    # 1: present 0.95 ≥ 0.9 → 0; absent 0.05 < 0.1 → 0, 0.3 → 0.5·0.2² = 0.02
    # 2: present (0.9 − 0.5)² = 0.16; absent 0.5·(0.5² + 0) = 0.125 → 0.285
    # 3: present (0.9 − 0)² = 0.81; absent 0
    expected = torch.tensor([0.02, 0.285, 0.81])
    for i in range(3):
        assert margin_loss(lengths[i:i + 1], target[i:i + 1]).item() == pytest.approx(expected[i].item())
    assert margin_loss(lengths, target).item() == pytest.approx(expected.mean().item())  # the batch's mean
    assert margin_loss(torch.tensor([[0.2, 0.9]]), torch.tensor([1]), m_plus=0.95, m_minus=0.3,
                       down_weight=1.0).item() == pytest.approx(0.05 ** 2)


def test_the_loss_option_picks_each_models_own_and_refuses_what_does_not_apply():
    class Plain(torch.nn.Module):
        def auxiliary_loss(self, x, y):
            return None

    logits, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.5]]), torch.tensor([0, 2])
    # logits under margin: the margin loss of their softmax probabilities
    assert Objective("margin", "logits")(Plain(), None, logits, y).item() == pytest.approx(
        margin_loss(torch.softmax(logits, 1), y).item())
    assert Objective(None, "lengths")(Plain(), None, logits.sigmoid(), y).item() == pytest.approx(
        margin_loss(logits.sigmoid(), y).item())
    assert Objective("cross_entropy", "lengths", 0.1)(Plain(), None, logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y, label_smoothing=0.1).item())

    def module(name: str, **options) -> ImageClassifier:
        return ImageClassifier(model={"name": name, "image_size": 28, "width": 4}, num_classes=10, in_channels=1,
                               **options)

    assert module("capsnet").criterion.name == "margin" and module("simple_cnn").criterion.name == "cross_entropy"
    assert module("capsnet", loss="cross_entropy").criterion.name == "cross_entropy"
    assert module("mlp", loss="margin").hparams.loss == "margin"
    with pytest.raises(CnnlabError, match=r"label_smoothing=0.1 smooths cross-entropy's targets.*margin loss "
                                          r"\(loss=null, the model's own\).*Valid: label_smoothing=0"):
        module("capsnet", label_smoothing=0.1)
    with pytest.raises(CnnlabError, match=r"label_smoothing=0.2 .*\(loss=margin\)"):
        module("simple_cnn", loss="margin", label_smoothing=0.2)
    with pytest.raises(CnnlabError, match=r"loss='hinge' is not valid\. Valid: loss=null .*cross_entropy.*margin"):
        module("simple_cnn", loss="hinge")


def test_the_decoder_sees_the_true_class_in_training_and_the_predicted_one_in_eval(mnist_digits):
    net = capsnet(reconstruction=True)
    x = normalised(mnist_digits[:6])
    seen = []
    net.decoder.layers.fc1.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))

    def blocks(masked: torch.Tensor) -> torch.Tensor:
        """The classes whose 16 numbers reach the decoder, one row per image."""
        return masked.reshape(-1, 10, 16).abs().sum(dim=2) > 0

    net.train()
    predicted = net(x).argmax(dim=1)
    y = (predicted + 3) % 10  # labels the network does not predict
    loss = net.auxiliary_loss(x, y)
    assert torch.equal(blocks(seen[-1]), F.one_hot(y, 10).bool())
    # 0.0005 × the summed squared error against the input rescaled to [0, 1], averaged over the batch
    by_hand = RECONSTRUCTION_WEIGHT * (net.decoder(net.digit_capsules(x), y) - pixel_target(x)).square().sum(
        dim=(1, 2, 3)).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    loss.backward()
    assert net.decoder.layers.fc1.weight.grad is not None and net.stages["digit_caps"].weight.grad is not None

    net.eval()
    with torch.no_grad():
        predicted = net(x).argmax(dim=1)
        net.auxiliary_loss(x, y)
    assert torch.equal(blocks(seen[-1]), F.one_hot(predicted, 10).bool())
    # an MNIST digit has a black pixel and one of 254 or 255: the target is about the digit's own pixels
    assert torch.allclose(pixel_target(x), mnist_digits[:6], atol=5e-3)
    assert net.reconstruct(x).shape == (6, 1, 28, 28)
    assert capsnet().auxiliary_loss(x, y) is None
    with pytest.raises(CnnlabError, match="no decoder.*model.reconstruction=true"):
        capsnet().reconstruct(x)


def test_the_reconstruction_term_reuses_the_forward_pass_routing(mnist_digits):
    net = capsnet(reconstruction=True).train()
    calls = []
    net.stages["digit_caps"].register_forward_hook(lambda *_: calls.append(1))
    x = normalised(mnist_digits[:4])
    objective = Objective(None, net.output_kind)
    objective(net, x, net(x), torch.tensor([0, 1, 2, 3]))
    assert len(calls) == 1  # routed once for both the lengths and the decoder
    objective(net, x, net(x.flip(-1)), torch.tensor([0, 1, 2, 3]))  # another batch ran last: route x again
    assert len(calls) == 3


def test_capsnet_has_the_papers_layers_and_parameter_counts():
    net = create_model("capsnet", num_classes=10, in_channels=1, image_size=28)
    assert net.stage_shapes() == {"conv1": (256, 20, 20), "primary_caps": (256, 6, 6), "digit_caps": (160,),
                                  "logits": (10,)}
    count = sum(p.numel() for p in net.parameters())
    decoder = sum(p.numel() for p in create_model("capsnet", num_classes=10, in_channels=1, image_size=28,
                                                  reconstruction=True).decoder.parameters())
    assert count == 6_804_224 and count + decoder == 8_215_568  # "8.2M parameters, 6.8M without the decoder"
    assert net.stages["digit_caps"].weight.shape == (1152, 10, 16, 8)  # an 8×16 map per capsule and class
    rgb = create_model("capsnet", num_classes=10, in_channels=3, image_size=32, width=16)
    assert rgb.stage_shapes()["primary_caps"] == (256, 8, 8) and rgb(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # convs see windows; routing mixes every primary capsule, as a global pooling would
    rfs = theoretical_rf(capsnet())
    assert rfs["conv1"] == StageRF(9, 1) and rfs["primary_caps"] == StageRF(17, 2)
    assert rfs["digit_caps"].whole and rfs["logits"].whole
    with torch.no_grad():
        lengths = capsnet().eval()(torch.randn(4, 1, 28, 28))
    assert (lengths >= 0).all() and (lengths < 1).all()


def test_pooling_and_depth_are_refused_by_name():
    with pytest.raises(CnnlabError, match=r"model 'capsnet' has no pooling: its capsules replace it.*pooling=max "
                                          r"does not apply\. Valid: pooling=native or pooling=none"):
        capsnet(pooling="max")
    with pytest.raises(CnnlabError, match=r"'capsnet' has no depth knob.*model.depth=2"):
        capsnet(depth=2)
    with pytest.raises(CnnlabError, match=r"model.routing_iters must be a whole number ≥ 1, got 0"):
        capsnet(routing_iters=0)
    with pytest.raises(CnnlabError, match=r"model.reconstruction='yes' is not valid"):
        capsnet(reconstruction="yes")
    with pytest.raises(CnnlabError, match=r"'capsnet' shrinks the feature map below 1×1: stage 'primary_caps'"):
        create_model("capsnet", num_classes=10, in_channels=1, image_size=16, width=4)
    assert capsnet(pooling="none") and capsnet(pooling="native")


def test_cnnlab_models_lists_capsnet(capsys):
    from cnnlab.zoo import main

    assert main(["capsnet", "--image-size", "28"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("capsnet: 6,804,224 parameters, input 1×28×28")
    assert all(stage in out for stage in ("conv1", "primary_caps", "digit_caps", "logits"))


@pytest.mark.slow
def test_capsnet_trains_from_the_cli_and_its_checkpoint_reloads(tmp_path):
    # 20 steps of a small capsnet: at the one-cycle schedule's default peak (0.001) it reaches 29 % in them, at
    # 0.003 67 % (measured 2026-12-04, CPU)
    done = run_cli("model=capsnet", "model.width=16", "model.primary_caps=8", "model.reconstruction=true",
                   "scheduler.max_lr=0.003", "debug=test", "logger=csv", "callbacks=base", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list((tmp_path / "logs" / "runs").glob("*/*"))
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test/acc"] > 0.5, results  # 20 steps of 128 images; chance is 0.1
    module = load_trained_module(run_dir / "checkpoints" / "last.ckpt", "ckpt_path")
    assert module.hparams.loss is None and module.criterion.name == "margin"
    assert module.net.decoder is not None and module.net.stages["digit_caps"].inputs == 8 * 6 * 6
    fresh = ImageClassifier(**module.hparams)
    load_checked(run_dir / "checkpoints" / "last.ckpt", dict(module.hparams), fresh)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), module(x))

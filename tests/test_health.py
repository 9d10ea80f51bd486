"""Health of every layer: dead channels counted exactly, gradient norms of the last training batch, and the
histograms in TensorBoard's own event files and in the offline W&B run."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.models import create_model
from cnnlab.probes.health import dead_fractions, health_numbers, stage_gradients
from cnnlab.train import train


def test_a_channel_that_never_fires_is_counted_dead_and_nothing_else_is():
    torch.manual_seed(0)
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=16, width=4, depth=2).eval()
    x = torch.randn(64, 1, 16, 16)
    assert dead_fractions(net, x) == {"block1": 0.0, "block2": 0.0}
    with torch.no_grad():
        net.stages["block1"].conv.bias[1] = -1e4  # channel 1 of block 1 can no longer rise above 0
    assert dead_fractions(net, x)["block1"] == 1 / 4
    tanh = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=16, width=4, activation="tanh")
    assert dead_fractions(tanh, x) == {}  # no ReLU-family channel: nothing to count


def test_gradient_norms_are_those_of_the_gradient_the_parameters_hold():
    torch.manual_seed(0)
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=16, width=4, depth=2)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    assert stage_gradients(net) == {}  # nothing trained yet: no gradient
    torch.nn.functional.cross_entropy(net(x), y).backward()
    numbers, histograms = health_numbers(net, x, stage_gradients(net))
    for name in ("block1", "block2", "logits"):
        params = list(net.stages[name].parameters())
        by_hand = torch.cat([p.grad.reshape(-1) for p in params]).norm()
        assert numbers[f"health/grad_norm/{name}"] == pytest.approx(float(by_hand), rel=1e-6)
        assert histograms[f"health/weights/{name}"].numel() == sum(p.numel() for p in params)
    assert "health/grad_norm/gap" not in numbers  # a stage without parameters


@pytest.mark.slow
def test_a_run_logs_the_histograms_and_numbers_per_stage(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("trainer.max_epochs=2", "trainer.limit_train_batches=5", "trainer.limit_val_batches=1",
                   "callbacks.layer_health.images=100", logger="[tensorboard,wandb]", callbacks="[base,health]"))
    run = tmp_path / "run"
    stages = ("block1", "block2", "fc1", "fc2", "logits")  # LeNet-5's stages, all with parameters
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"histograms": 0}).Reload()
    for name in stages:
        for kind in ("weights", "grads"):
            steps = [h.step for h in events.Histograms(f"health/{kind}/{name}")]
            assert steps == [5, 10], (kind, name, steps)
    lines = [json.loads(line) for line in (run / "probes" / "layer_health.jsonl").read_text().splitlines()]
    assert [line["tag"] for line in lines] == ["epoch000", "epoch001"]
    for name in stages:
        assert lines[-1]["numbers"][f"health/grad_norm/{name}"] > 0
    for name in stages[:-1]:  # the logits have no activation
        assert 0 <= lines[-1]["numbers"][f"health/dead_fraction/{name}"] < 1
    assert "health/dead_fraction/logits" not in lines[-1]["numbers"]
    (wandb_run,) = find_runs(run)
    rows = [r for r in read_run(wandb_run)["history"] if "health/grads/block1._type" in r]
    assert [r["health/grads/block1._type"] for r in rows] == ["histogram", "histogram"]

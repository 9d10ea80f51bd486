"""overhead = cnnlab's training step / a plain PyTorch loop's, same model, data, batch size, optimizer and
schedule. The plain loop is the limit a framework can approach; Lightning's own parity check allows
0.05 s per epoch over it."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from benchmarks.common import ACCELERATOR, DEVICE, Ratio, run_in_process, scratch
from cnnlab.callbacks.throughput import step_seconds

WARMUP = 10  # steps left out of each timing, the Throughput callback's default
#: the framework alone: W&B, pictures and probes are what the logging ratio measures
FRAMEWORK = ["logger=none", "callbacks=base"]


def plain_loop(overrides: list[str], steps: int) -> float:
    """Seconds per step of the loop anyone would write by hand, on cnnlab's data path and model."""
    from cnnlab.config import compose, to_plain
    from cnnlab.data import datamodule_from_config
    from cnnlab.module import ImageClassifier
    from cnnlab.optim import build_optimizer, build_scheduler

    cfg = to_plain(compose([*ACCELERATOR, *overrides], scratch("plain")))
    torch.manual_seed(cfg["seed"])
    data = datamodule_from_config(cfg)
    data.setup("fit")
    net = ImageClassifier.from_config(cfg, data).net.to(DEVICE)  # the very network cnnlab-train builds
    opt = build_optimizer(cfg["optimizer"], net.parameters())
    loader = data.train_dataloader()
    schedule = build_scheduler(cfg["scheduler"], opt, 1, len(loader))
    net.train()
    starts = []
    for x, y in loader:
        starts.append(time.perf_counter())
        if len(starts) > steps:
            break
        x, y = x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y, label_smoothing=cfg["label_smoothing"]).backward()
        opt.step()
        if schedule and schedule["interval"] == "step":
            schedule["scheduler"].step()
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return step_seconds(starts, WARMUP)


def cnnlab_step(overrides: list[str], steps: int) -> float:
    """Seconds per step of `cnnlab-train` itself (Lightning loop, metrics, logger), `steps` steps, no eval."""
    results = run_in_process([*overrides, "trainer.max_epochs=1", f"trainer.limit_train_batches={steps + 1}",
                              "trainer.limit_val_batches=0", "test=false", "++callbacks.model_checkpoint.monitor=null",
                              f"++callbacks.throughput.warmup={WARMUP}"], scratch("cnnlab"))
    return results["perf/step_ms"] / 1000


def measure(overrides: list[str], pairs: int = 6, steps: int = 200) -> Ratio:
    ratio = Ratio("overhead", "cnnlab step / plain PyTorch loop step", "ms/step", target="≤ 1.05")
    for _ in range(pairs):
        ratio.a.append(1000 * cnnlab_step(overrides, steps))
        ratio.b.append(1000 * plain_loop(overrides, steps))
    return ratio


if __name__ == "__main__":
    print(measure(FRAMEWORK).as_dict())

"""overhead = cnnlab's training step / a plain PyTorch loop's, same model, data, batch size, optimizer,
schedule, precision (bfloat16 autocast under `trainer.precision=bf16-mixed`) and memory format. The plain loop is
the limit a framework can approach; Lightning's own parity check allows 0.05 s per epoch over it."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from benchmarks.common import ACCELERATOR, DEVICE, PAIRS, Ratio, paired, run_in_process, scratch
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
    layout = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    net = net.to(memory_format=layout)
    autocast = torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=cfg["trainer"]["precision"] == "bf16-mixed")
    opt = build_optimizer(cfg["optimizer"], net)
    loader = data.train_dataloader()
    schedule = build_scheduler(cfg["scheduler"], opt, 1, len(loader))
    net.train()
    starts = []
    for x, y in loader:
        starts.append(time.perf_counter())
        if len(starts) > steps:
            break
        x, y = x.to(DEVICE, non_blocking=True).contiguous(memory_format=layout), y.to(DEVICE, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(net(x), y, label_smoothing=cfg["label_smoothing"])
        loss.backward()
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


def measure(overrides: list[str], pairs: int = PAIRS, steps: int = 200, name: str = "overhead",
            progress=None) -> Ratio:
    ratio = Ratio(name, "cnnlab step / plain PyTorch loop step", "ms/step", target="≤ 1.05")
    return paired(ratio, lambda: 1000 * cnnlab_step(overrides, steps), lambda: 1000 * plain_loop(overrides, steps),
                  pairs, progress=progress)


if __name__ == "__main__":
    print(measure(FRAMEWORK).as_dict())

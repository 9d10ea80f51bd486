"""data = images per second delivered to the training device by the tensor-resident path / by the
DataLoader path (per-image torchvision transforms in `data.num_workers` worker processes), same
dataset, batch size and transforms."""

from __future__ import annotations

import time

import torch

from benchmarks.common import ACCELERATOR, DEVICE, Ratio, scratch

WARMUP = 5  # batches left out: worker start-up and first-touch allocation


def images_per_second(overrides: list[str], resident: bool, batches: int) -> float:
    from cnnlab.config import compose, to_plain
    from cnnlab.data import datamodule_from_config

    cfg = to_plain(compose([*ACCELERATOR, *overrides, f"data.resident={str(resident).lower()}"], scratch("data")))
    data = datamodule_from_config(cfg)
    data.device = torch.device(DEVICE)
    data.setup("fit")
    seen, started = 0, None
    for i, (x, y) in enumerate(data.train_dataloader()):
        x, y = x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)
        if i == WARMUP:
            if DEVICE == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        elif i > WARMUP:
            seen += len(x)
        if i == WARMUP + batches:
            break
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def measure(overrides: list[str], pairs: int = 3, batches: int = 60) -> Ratio:
    ratio = Ratio("data", "tensor-resident / DataLoader images per second", "images/s", target="≥ 10")
    for _ in range(pairs):
        ratio.a.append(images_per_second(overrides, True, batches * 20))
        ratio.b.append(images_per_second(overrides, False, batches))
    return ratio


if __name__ == "__main__":
    print(measure([]).as_dict())

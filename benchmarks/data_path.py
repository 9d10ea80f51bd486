"""data = images per second delivered to the training device by the tensor-resident path / by the
DataLoader path (per-image torchvision transforms in `data.num_workers` worker processes; for an image folder,
torchvision's ImageFolder decoding each JPEG as it is read), same dataset, batch size and transforms."""

from __future__ import annotations

import time

import torch

from benchmarks.common import ACCELERATOR, DEVICE, PAIRS, Ratio, paired, scratch

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


def measure(overrides: list[str], pairs: int = PAIRS, batches: int = 60, name: str = "data", target: str = "≥ 10",
            progress=None) -> Ratio:
    ratio = Ratio(name, "tensor-resident / DataLoader images per second", "images/s", target=target)
    return paired(ratio, lambda: images_per_second(overrides, True, batches * 20),
                  lambda: images_per_second(overrides, False, batches), pairs, progress=progress)


if __name__ == "__main__":
    print(measure([]).as_dict())

"""Training speed per epoch, the numbers that decide how many ablation runs fit in a day: milliseconds per
optimizer step and images per second, to every logger as perf/step_ms and perf/images_per_s.

A step is timed from one batch's start to the next, so Lightning's loop, logging and the progress bar are
inside it; the first `warmup` steps of each epoch are left out (allocator and thread-pool warm-up)."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


def step_seconds(starts: list[float], warmup: int) -> float | None:
    """Mean seconds per step from the start times of consecutive steps, after `warmup` steps."""
    kept = starts[warmup:]
    return (kept[-1] - kept[0]) / (len(kept) - 1) if len(kept) > 1 else None


class Throughput(Callback):
    def __init__(self, warmup: int = 10) -> None:
        self.warmup = warmup
        self.starts: list[float] = []
        self.sizes: list[int] = []
        #: one {"epoch", "step_ms", "images_per_s"} per finished training epoch
        self.epochs: list[dict[str, Any]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts, self.sizes = [], []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.starts.append(time.perf_counter())
        self.sizes.append(len(batch[0]) if isinstance(batch, (list, tuple)) else 0)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = step_seconds(self.starts, self.warmup)
        if seconds is None:
            return
        timed = self.starts[-1] - self.starts[self.warmup]  # steps warmup .. last-but-one
        images = sum(self.sizes[self.warmup : -1])
        record = {"epoch": trainer.current_epoch, "step_ms": 1000 * seconds, "images_per_s": images / timed}
        self.epochs.append(record)
        pl_module.log("perf/step_ms", record["step_ms"])
        pl_module.log("perf/images_per_s", record["images_per_s"])

"""Histograms into whichever loggers show them: W&B (wandb.Histogram, 64 bins) and TensorBoard (its
histogram and distribution tabs). CSV and no logger keep the numbers only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger


def log_histograms(loggers: Sequence[Logger], values: Mapping[str, torch.Tensor], step: int) -> None:
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            logger.log_metrics({key: wandb.Histogram(v.float().numpy(), num_bins=64) for key, v in values.items()},
                               step=step)
        elif isinstance(logger, TensorBoardLogger):
            writer = logger.experiment
            for key, v in values.items():
                writer.add_histogram(key, v.float(), step)
            writer.flush()

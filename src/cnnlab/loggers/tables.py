"""Tables of images and values into W&B (a wandb.Table its dashboard can filter, sort and group); other
loggers have no such table and get the pictures and files instead."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from lightning.pytorch.loggers import Logger, WandbLogger


def log_image_table(loggers: Sequence[Logger], key: str, images: Sequence[np.ndarray], rows: Sequence[dict],
                    step: int) -> None:
    """One W&B Table under `key`: an 'image' column (RGB uint8 arrays) followed by the columns of `rows`."""
    wandb_loggers = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not wandb_loggers or not rows:
        return
    import wandb

    columns = ["image", *rows[0]]
    data = [[wandb.Image(image), *row.values()] for image, row in zip(images, rows)]
    for logger in wandb_loggers:
        logger.log_table(key, columns=columns, data=data, step=step)

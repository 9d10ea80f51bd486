"""Pictures into whichever experiment loggers a run has: W&B images with captions, TensorBoard images
with the caption as text. Loggers that show no images (CSV, fast_dev_run's dummy) are skipped."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

from cnnlab.pictures import Picture


def log_pictures(loggers: Sequence[Logger], pictures: Sequence[Picture], step: int) -> None:
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            # one wandb.log call for all pictures: one history row, panels grouped by the key's prefix
            logger.log_metrics({p.key: wandb.Image(p.image, caption=p.caption) for p in pictures}, step=step)
        elif isinstance(logger, TensorBoardLogger):
            writer = logger.experiment
            for p in pictures:
                writer.add_image(p.key, p.image, step, dataformats="HWC")
                writer.add_text(p.key, p.caption, step)
            writer.flush()

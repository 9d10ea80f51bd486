"""Save a checkpoint when a run dies (Ctrl-C, a crash), so nothing is lost.

Lightning's OnExceptionCheckpoint also makes every fresh `fit()` look for a 'last' checkpoint to resume
from (with a warning each run); this one only saves."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info


class InterruptCheckpoint(Callback):
    def __init__(self, dirpath: str | Path, filename: str = "interrupted") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        # Not trainer.save_checkpoint: it ends in a barrier, which under DDP waits forever for the ranks that did
        # not fail. Rank 0 writes the file.
        trainer.strategy.save_checkpoint(trainer._checkpoint_connector.dump_checkpoint(), self.path)
        rank_zero_info(f"cnnlab: saved {self.path} at step {trainer.global_step} after {type(exception).__name__}; "
                       f"resume with ckpt_path={self.path}")

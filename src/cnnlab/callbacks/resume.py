"""checkpoints/resume.ckpt: what `resume=true` goes on from after a kill.

Written every `every_n_steps` optimizer steps (a kill -9 loses at most that many), and when the run is stopped
by SIGTERM (a scheduler's notice), Ctrl-C or a crash. Never with nan weights: a run whose loss went nan keeps
the checkpoint from before. Lightning's checkpoint IO writes to a temporary file and renames it, so a kill
during the write leaves the previous file whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from cnnlab.errors import NonFiniteLossError, whole_number
from cnnlab.lightning_compat import dump_full_checkpoint
from cnnlab.resume import RESUME_CKPT


class ResumeCheckpoint(Callback):
    def __init__(self, dirpath: str | Path, every_n_steps: int | None = 100) -> None:
        if every_n_steps is not None:
            whole_number("callbacks.resume_checkpoint.every_n_steps", every_n_steps, meaning="steps, e.g. 100",
                         valid="Or null for checkpoints at epoch ends only.")
        self.path = Path(dirpath) / RESUME_CKPT
        self.every_n_steps = every_n_steps

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, why: str) -> None:
        check = getattr(pl_module, "check_finite", None)
        if check is not None:
            check()  # raises NonFiniteLossError rather than save nan weights
        # Not trainer.save_checkpoint: it ends in a barrier, which under DDP waits forever for ranks that
        # failed. Rank 0 writes the file.
        trainer.strategy.save_checkpoint(dump_full_checkpoint(trainer), self.path)
        if why:
            rank_zero_info(f"cnnlab: saved {self.path} at step {trainer.global_step} ({why}); go on with the same "
                           "command and resume=true")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer, pl_module, "")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0 or isinstance(exception, NonFiniteLossError):
            return
        try:
            self._save(trainer, pl_module, type(exception).__name__)
        except NonFiniteLossError:
            pass  # the loss went nan before the stop: the last checkpoint from before it stays

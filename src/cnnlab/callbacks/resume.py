"""checkpoints/resume.ckpt: what `resume=true` goes on from after a kill, and checkpoints/logged.json: how much
of the run's logged history each resume point stands on.

resume.ckpt is written every `every_n_steps` optimizer steps (a kill -9 loses at most about that many; a step whose
batch Lightning logs right after the hooks, or the last of an epoch, passes it to the next step, so nothing logged
before a checkpoint is logged after it), and when the run is stopped by SIGTERM (a scheduler's notice), Ctrl-C or a
crash, except inside validation (the checkpoint from before it stands). Never with nan weights: a run whose loss
went nan keeps the checkpoint from before. Lightning's checkpoint IO writes to a temporary file and renames it, so
a kill during the write leaves the previous file whole.

Before each checkpoint counts, the loggers write out what they hold, and logged.json records, per checkpoint, its
step and how many rows each logger had written then: resume=true goes on only from a checkpoint whose history is
on disk, and keeps exactly those rows (resume.ckpt once written; last.ckpt once the epoch-end rows that Lightning
logs after saving it are out, at the next epoch's start or the end of training)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_info

from cnnlab.errors import NonFiniteLossError, whole_number
from cnnlab.lightning_compat import dump_full_checkpoint
from cnnlab.loggers import QuietWandbLogger
from cnnlab.resume import LAST_CKPT, LOGGED, RESUME_CKPT


def flush_loggers(trainer: L.Trainer) -> dict[str, int]:
    """Every logger writes out what it holds; returns the rows each has written so far (metrics.csv's data rows,
    the W&B run's history copy's rows), what a resumed run keeps."""
    rows: dict[str, int] = {}
    if not trainer.is_global_zero:  # loggers write on rank 0 only (elsewhere their experiment is a stand-in)
        return rows
    for logger in trainer.loggers:
        logger.save()
        if isinstance(logger, CSVLogger):
            path = Path(logger.experiment.metrics_file_path)
            rows["csv"] = max(path.read_bytes().count(b"\n") - 1, 0) if path.is_file() else 0
        elif isinstance(logger, QuietWandbLogger):
            rows["wandb"] = logger.history_rows
    return rows


def record_logged(checkpoints: Path, name: str, step: int, rows: dict[str, int]) -> None:
    """Note in logged.json that checkpoint `name` (at `step`) stands on `rows` of each logger's history."""
    path = checkpoints / LOGGED
    try:
        marks = json.loads(path.read_text())
    except (OSError, ValueError):
        marks = {}
    marks[name] = {"step": step, "rows": rows}
    temporary = path.with_suffix(".tmp")
    checkpoints.mkdir(parents=True, exist_ok=True)
    temporary.write_text(json.dumps(marks))
    os.replace(temporary, path)  # a kill leaves the old file or the new one, never half of one


class ResumeCheckpoint(Callback):
    def __init__(self, dirpath: str | Path, every_n_steps: int | None = 100) -> None:
        if every_n_steps is not None:
            whole_number("callbacks.resume_checkpoint.every_n_steps", every_n_steps, meaning="steps, e.g. 100",
                         valid="Or null for checkpoints at epoch ends only.")
        self.path = Path(dirpath) / RESUME_CKPT
        self.every_n_steps = every_n_steps
        self.due = False  # a periodic save passed on to the next step that allows one

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, why: str) -> None:
        check = getattr(pl_module, "check_finite", None)
        if check is not None:
            check()  # raises NonFiniteLossError rather than save nan weights
        rows = flush_loggers(trainer)
        # Not trainer.save_checkpoint: it ends in a barrier, which under DDP waits forever for ranks that
        # failed. Rank 0 writes the file.
        trainer.strategy.save_checkpoint(dump_full_checkpoint(trainer), self.path)
        if trainer.is_global_zero:
            record_logged(self.path.parent, RESUME_CKPT, trainer.global_step, rows)
        self.due = False
        if why:
            rank_zero_info(f"cnnlab: saved {self.path} at step {trainer.global_step} ({why}); go on with the same "
                           "command and resume=true")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.due = True
        logs_next = trainer.global_step % trainer.log_every_n_steps == 0  # Lightning logs this batch after the hooks
        last = batch_idx + 1 >= trainer.num_training_batches  # validation and the epoch's rows follow
        if self.due and not logs_next and not last:
            self._save(trainer, pl_module, "")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn != "fit" or trainer.global_step == 0 or isinstance(exception, NonFiniteLossError):
            return
        if trainer.validating:
            # Stopped inside validation: a checkpoint now would hold none of the validation's metrics, and Lightning
            # takes a checkpoint after an epoch's last batch as one saved after its validation, so a resume would
            # skip it and lose the epoch's val rows (CI, 2026-12-04). The checkpoint from before the stop stands.
            rank_zero_info(f"cnnlab: stopped during validation at step {trainer.global_step}; resume=true goes on "
                           "from the checkpoint before it")
            return
        try:
            self._save(trainer, pl_module, type(exception).__name__)
        except NonFiniteLossError:
            pass  # the loss went nan before the stop: the last checkpoint from before it stays


class EpochLogsWritten(Callback):
    """Marks last.ckpt as a resume point once the rows Lightning logs after saving it (the epoch's training metrics)
    are written: first among the callbacks at an epoch's start, before anything of the new epoch is logged, and at
    the end of training."""

    def __init__(self, dirpath: str | Path) -> None:
        self.checkpoints = Path(dirpath)

    def _mark(self, trainer: L.Trainer) -> None:
        rows = flush_loggers(trainer)
        if trainer.is_global_zero and (self.checkpoints / LAST_CKPT).is_file():
            record_logged(self.checkpoints, LAST_CKPT, trainer.global_step, rows)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0:
            self._mark(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark(trainer)

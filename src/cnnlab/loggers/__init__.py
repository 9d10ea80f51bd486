"""Experiment loggers by name from the `logger` config group (W&B offline by default)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from cnnlab.lightning_compat import csv_logger_keeping_history, drop_wandb_init_arg, wandb_run_started
from cnnlab.registry import Registry


class QuietWandbLogger(WandbLogger):
    """Lightning's W&B logger, without the warning Lightning's `anonymous=None` makes wandb print on every run, and
    with a durable copy of the run's scalar history: `history` (<run dir>/wandb/history.jsonl) gets every scalar
    row it logs, written out by `save()` (before each checkpoint counts). A run killed -9 loses what the W&B
    service had not written; a resumed run starts its new segment with the rows of this copy (`carry`)."""

    def __init__(self, history: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drop_wandb_init_arg(self, "anonymous")
        self.history = history
        self.history_rows = 0  # rows of `history` written so far
        self._pending: list[dict[str, float]] = []
        self.service_lost = False  # the W&B service process has gone (see `lost`)

    def lost(self, err: ConnectionError) -> None:
        """The W&B service process has gone: SLURM signals every process of a job, W&B's own service among them, and
        it ends at once (wandb/wandb#9963). The rows go on into the history copy, which the resumed run carries
        into the same W&B run; nothing more is sent to the dead service."""
        if not self.service_lost:
            self.service_lost = True
            print(f"cnnlab: W&B's service process has stopped ({type(err).__name__}; a signal to the whole job "
                  f"reaches it too): this run's rows go on into {self.history}, and its resumed start carries them "
                  "into the same W&B run.", file=sys.stderr, flush=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not self.service_lost:
            try:
                super().log_metrics(metrics, step)
            except ConnectionError as err:
                self.lost(err)
        row = {k: float(v) for k, v in metrics.items()
               if isinstance(v, (int, float, torch.Tensor)) and not isinstance(v, bool)
               and (not isinstance(v, torch.Tensor) or v.numel() == 1)}
        if row and self.history is not None:
            self._pending.append({**row, **({"trainer/global_step": step} if step is not None else {})})

    @rank_zero_only
    def save(self) -> None:
        super().save()
        if self._pending and self.history is not None:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            with self.history.open("a") as file:
                file.writelines(json.dumps(row) + "\n" for row in self._pending)
                file.flush()
                os.fsync(file.fileno())
            self.history_rows += len(self._pending)
            self._pending = []

    def carry(self, rows: int) -> int:
        """Start this (resumed) run's segment with the first `rows` rows of its history copy, and keep only those
        in the copy; the rows after them were logged after the checkpoint it goes on from, and come again."""
        kept = []
        if self.history is not None and self.history.is_file():
            with self.history.open() as file:
                kept = [line for _, line in zip(range(rows), file)]
        if self.history is not None:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            self.history.write_text("".join(kept))
        for line in kept:
            self.experiment.log(json.loads(line))
        self.history_rows = len(kept)
        return len(kept)


@dataclass(frozen=True)
class ResumeFrom:
    """Where a resumed run goes on from: the checkpoint's step, and how many rows of each logger's history were
    written when it counted (`csv`, `wandb`; a logger not named keeps none). Step 0 and no rows: it starts over."""

    step: int
    rows: dict[str, int]


def resume_from(step: int | None, rows: dict[str, int] | None, logs_exist: bool) -> ResumeFrom | None:
    """What the loggers keep of a run dir's earlier history: from a checkpoint, the rows its mark names (a run from
    before the marks: all of them); with earlier logs but no checkpoint to go on from, nothing; else None."""
    if step is not None:
        return ResumeFrom(step, rows if rows is not None else {"csv": sys.maxsize, "wandb": sys.maxsize})
    return ResumeFrom(0, {}) if logs_exist else None


# Each factory gets (run dir, run name, sweep group, W&B id to append to or None, where a resumed run goes on from
# or None, **options from the config). A resumed run keeps its whole history in every logger: what was written
# when its checkpoint counted stays, what was logged after it (and is logged again now) is dropped.
LOGGERS: Registry[Callable[..., Logger]] = Registry("logger", config_key="logger")


@LOGGERS.register("wandb")
def _wandb(output_dir: Path, name: str, group: str | None, resume_id: str | None, resume: ResumeFrom | None,
           project: str = "cnnlab", offline: bool = True, **options: Any) -> Logger:
    # Files land in <run dir>/wandb/offline-run-*/: view with `wandb leet`, upload later with `wandb sync`.
    # A resumed run goes on in its W&B run: same id, a new offline-run-* folder that starts with the scalar rows
    # written before its checkpoint counted (from history.jsonl), so it holds the whole history by itself (W&B
    # cannot resume an offline run, and `wandb sync` of a later segment with the same id replaces the earlier one).
    if resume_id:
        options.update(id=resume_id, resume="allow")
    logger = QuietWandbLogger(history=output_dir / "wandb" / "history.jsonl", name=name, group=group,
                              project=project, save_dir=str(output_dir), offline=offline, **options)
    if resume is not None:
        logger.carry(resume.rows.get("wandb", 0) if resume_id else 0)
    return logger


@LOGGERS.register("tensorboard")
def _tensorboard(output_dir: Path, name: str, group: str | None, resume_id: str | None, resume: ResumeFrom | None,
                 **options: Any) -> Logger:
    # no placeholder hp_metric: the HParams tab gets the run's real numbers when it ends (record_hparams)
    options.setdefault("default_hp_metric", False)
    if resume is not None:  # TensorBoard hides the earlier files' events from this step on
        options.setdefault("purge_step", resume.step)
    return TensorBoardLogger(save_dir=str(output_dir), name="tensorboard", version="", **options)


@LOGGERS.register("csv")
def _csv(output_dir: Path, name: str, group: str | None, resume_id: str | None, resume: ResumeFrom | None,
         **options: Any) -> Logger:
    keep = None if resume is None else resume.rows.get("csv", 0)
    return csv_logger_keeping_history(keep, save_dir=str(output_dir), name="csv", version="", **options)


def build_loggers(cfg: Mapping[str, Any] | None, output_dir: Path, name: str, group: str | None,
                  resume_id: str | None = None, resume: ResumeFrom | None = None) -> list[Logger]:
    """`cfg` maps logger names to their options; `logger=[wandb,csv]` gives both, `logger=none` none."""
    loggers = []
    for kind, options in (cfg or {}).items():
        if options is None:  # `logger.wandb=null` switches one off
            continue
        loggers.append(LOGGERS.build(kind, output_dir, name, group, resume_id, resume, **dict(options)))
    return loggers


def record_summary(loggers: list[Logger], values: dict[str, Any]) -> None:
    """Final numbers into the W&B run summary (what dashboards and `wandb leet` show per run)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and not getattr(logger, "service_lost", False):
            try:
                logger.experiment.summary.update(values)
            except ConnectionError as err:
                logger.lost(err)


def record_hparams(loggers: list[Logger], config: Mapping[str, Any], numbers: Mapping[str, Any], step: int) -> None:
    """TensorBoard's HParams tab: the run's config beside its final numbers (test accuracy and loss, the best
    validation accuracy, every probe number), so runs of a sweep can be compared and sorted there."""
    metrics = {k: float(v) for k, v in numbers.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("probe_seconds/")}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and metrics:
            logger.log_hyperparams(dict(config), metrics=metrics, step=step)


def record_failure(loggers: list[Logger], err: BaseException, step: int) -> None:
    """A run that stopped early says so in its W&B summary: what went wrong, and at which step."""
    message = str(err).strip() or type(err).__name__
    record_summary(loggers, {"failed": True, "error": message, "failed_at_step": step})


def finish_loggers(loggers: list[Logger], failed: bool = False) -> None:
    """End each W&B run, so every job of a multirun gets a run of its own (Lightning's finalize does not;
    it already finalizes the other loggers at the end of fit and test). A failed run ends in state failed."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and wandb_run_started(logger) and not getattr(logger, "service_lost", False):
            try:
                logger.experiment.finish(exit_code=1 if failed else 0)
            except ConnectionError as err:
                logger.lost(err)


def view_hints(loggers: list[Logger]) -> list[tuple[str, str]]:
    """The commands that show this run's logs, for the end-of-run summary."""
    hints = []
    for logger in loggers:
        if isinstance(logger, WandbLogger) and wandb_run_started(logger):
            run_dir = Path(logger.experiment.dir).parent  # .../wandb/offline-run-*/files → the run folder
            hints.append(("view", f"wandb leet {run_dir}"))
            if run_dir.name.startswith("offline-run-"):
                hints.append(("upload", f"wandb sync {run_dir}"))
        elif isinstance(logger, TensorBoardLogger):
            hints.append(("view", f"tensorboard --logdir {logger.log_dir}"))
        elif isinstance(logger, CSVLogger):
            hints.append(("metrics", str(Path(logger.log_dir) / "metrics.csv")))
    return hints

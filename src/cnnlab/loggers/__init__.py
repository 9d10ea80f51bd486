"""Experiment loggers by name from the `logger` config group (W&B offline by default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from cnnlab.lightning_compat import drop_wandb_init_arg, wandb_run_started
from cnnlab.registry import Registry


class QuietWandbLogger(WandbLogger):
    """Lightning always passes `anonymous=None` to wandb.init, which makes wandb warn on every run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drop_wandb_init_arg(self, "anonymous")


# Each factory gets (run dir, run name, sweep group, W&B id to append to or None, **options from the config).
LOGGERS: Registry[Callable[..., Logger]] = Registry("logger", config_key="logger")


@LOGGERS.register("wandb")
def _wandb(output_dir: Path, name: str, group: str | None, resume_id: str | None, project: str = "cnnlab",
           offline: bool = True, **options: Any) -> Logger:
    # Files land in <run dir>/wandb/offline-run-*/: view with `wandb leet`, upload later with `wandb sync`.
    # A resumed run appends to its W&B run: same id (a second offline-run-* folder that `wandb sync` joins).
    if resume_id:
        options.update(id=resume_id, resume="allow")
    return QuietWandbLogger(name=name, group=group, project=project, save_dir=str(output_dir), offline=offline,
                            **options)


@LOGGERS.register("tensorboard")
def _tensorboard(output_dir: Path, name: str, group: str | None, resume_id: str | None, **options: Any) -> Logger:
    # no placeholder hp_metric: the HParams tab gets the run's real numbers when it ends (record_hparams)
    options.setdefault("default_hp_metric", False)
    return TensorBoardLogger(save_dir=str(output_dir), name="tensorboard", version="", **options)


@LOGGERS.register("csv")
def _csv(output_dir: Path, name: str, group: str | None, resume_id: str | None, **options: Any) -> Logger:
    return CSVLogger(save_dir=str(output_dir), name="csv", version="", **options)


def build_loggers(cfg: Mapping[str, Any] | None, output_dir: Path, name: str, group: str | None,
                  resume_id: str | None = None) -> list[Logger]:
    """`cfg` maps logger names to their options; `logger=[wandb,csv]` gives both, `logger=none` none."""
    loggers = []
    for kind, options in (cfg or {}).items():
        if options is None:  # `logger.wandb=null` switches one off
            continue
        loggers.append(LOGGERS.build(kind, output_dir, name, group, resume_id, **dict(options)))
    return loggers


def record_summary(loggers: list[Logger], values: dict[str, Any]) -> None:
    """Final numbers into the W&B run summary (what dashboards and `wandb leet` show per run)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(values)


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
        if isinstance(logger, WandbLogger) and wandb_run_started(logger):
            logger.experiment.finish(exit_code=1 if failed else 0)


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

"""Lightning callbacks by name from the `callbacks` config group; `callbacks.<name>=null` drops one."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    RichModelSummary,
    TQDMProgressBar,
)

from cnnlab.callbacks.cadence import CadenceCallback
from cnnlab.callbacks.lookahead import Lookahead
from cnnlab.callbacks.pictures import (
    ActivationPictures,
    AttributionPictures,
    ExamplePictures,
    FilterPictures,
    MaximisationPictures,
    MistakePictures,
    ReportPictures,
)
from cnnlab.callbacks.probes import PROBES
from cnnlab.callbacks.progress import ProgressBar
from cnnlab.callbacks.resume import EpochLogsWritten, ResumeCheckpoint
from cnnlab.callbacks.throughput import Throughput
from cnnlab.registry import Registry

# Each factory gets (run dir, has_logger, **options from the config) and returns a callback or None.
CALLBACKS: Registry[Callable[..., Callback | None]] = Registry("callback", config_key="callbacks")


@CALLBACKS.register("model_checkpoint")
def _checkpoint(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    # last.ckpt to resume from, plus the best by the monitored metric.
    return ModelCheckpoint(dirpath=str(output_dir / "checkpoints"), **options)


@CALLBACKS.register("resume_checkpoint")
def _resume(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    # checkpoints/resume.ckpt every few steps and when the run is stopped: what resume=true goes on from.
    return ResumeCheckpoint(dirpath=output_dir / "checkpoints", **options)


@CALLBACKS.register("early_stopping")
def _early_stopping(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return EarlyStopping(**options)


@CALLBACKS.register("lr_monitor")
def _lr_monitor(output_dir: Path, has_logger: bool, **options: Any) -> Callback | None:
    return LearningRateMonitor(**options) if has_logger else None  # it refuses to run without a logger


@CALLBACKS.register("rich_progress_bar")
def _rich_bar(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return ProgressBar(**options)


@CALLBACKS.register("tqdm_progress_bar")
def _tqdm_bar(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return TQDMProgressBar(**options)


@CALLBACKS.register("throughput")
def _throughput(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return Throughput(**options)


@CALLBACKS.register("lookahead")
def _lookahead(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return Lookahead(**options)


@CALLBACKS.register("model_summary")
def _summary(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
    return RichModelSummary(**options)


def _register_cadenced(cls: type[CadenceCallback]) -> None:
    def factory(output_dir: Path, has_logger: bool, **options: Any) -> Callback:
        return cls(output_dir, **options)  # PNGs under the run dir whatever the loggers

    factory.__doc__ = cls.__doc__
    own = list(inspect.signature(cls).parameters.values())[1:]  # its options, for the bad-option error
    factory.__signature__ = inspect.signature(factory).replace(
        parameters=list(inspect.signature(_checkpoint).parameters.values())[:2] + own)
    CALLBACKS.register(cls.config_name)(factory)


for _cls in (FilterPictures, ActivationPictures, ExamplePictures, AttributionPictures, MaximisationPictures,
             MistakePictures, ReportPictures, *PROBES):
    _register_cadenced(_cls)


def build_callbacks(cfg: Mapping[str, Any] | None, output_dir: Path, has_logger: bool) -> list[Callback]:
    """The configured callbacks, in order, except that the resume checkpoint goes last (everything the other
    callbacks log at a step is logged before the checkpoint of that step) and its epoch-start mark first."""
    callbacks = []
    for name, options in (cfg or {}).items():
        if options is None:
            continue
        callback = CALLBACKS.build(name, output_dir, has_logger, **dict(options))
        if callback is not None:
            callbacks.append(callback)
    resume = [c for c in callbacks if isinstance(c, ResumeCheckpoint)]
    marks = [EpochLogsWritten(c.path.parent) for c in resume]
    return marks + [c for c in callbacks if not isinstance(c, ResumeCheckpoint)] + resume

"""The runs an explorer serves: each trained network from its checkpoint, in eval mode on the CPU, with what it
needs to take a raw image (pixels in [0, 1], the model's input size) to its stages exactly as the run's own
evaluation does, and the run's validation images to pick from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.probes.receptive_field import StageRF, local_rf, theoretical_rf
from cnnlab.reports.runs import Run, is_run_dir, job_dirs, label, read_run, varying


@dataclass(eq=False)
class Images:
    """A run's first validation images as raw pixels (N, C, H, W) in [0, 1] at the model's input size, their
    labels, and the probe images (the first of each class); `error` says why there are none."""

    raw: torch.Tensor
    labels: list[int]
    probe: list[int]
    error: str | None = None


@dataclass(eq=False)
class ExploreRun:
    run: Run
    label: str                              # the overrides that differ between the served runs
    checkpoint: Path
    net: nn.Module = field(repr=False)      # in eval mode, on the CPU
    class_names: list[str]
    mean: torch.Tensor | None               # (C, 1, 1) the run's normalisation, None when it has none
    std: torch.Tensor | None
    rf: dict[str, StageRF]                  # each stage's field on the input
    below: dict[str, StageRF]               # each stage's field on the map of the stage before it
    images: Images | None = None            # loaded on first use
    examples: dict[str, Any] | None = None  # each stage's top dataset examples, computed on first use
    data_config: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.net.input_shape)

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        """What the run's evaluation transform does after sizing: (x − mean) / std, when it normalises."""
        return raw if self.mean is None else (raw - self.mean) / self.std

    def stage_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.net.stage_shapes()

    def load_images(self, count: int) -> Images:
        """The first `count` validation images, read once (from the run's own data settings)."""
        if self.images is None:
            self.images = _validation_images(self, count)
        return self.images


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Run dirs from RUN_DIR arguments: a run dir is itself, a sweep dir gives its jobs in order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise CnnlabError(f"RUN_DIR {raw} is not a directory. Valid: a run dir cnnlab-train wrote "
                              "(logs/runs/<date>/<time>) or a sweep dir (logs/multiruns/<date>/<time>).")
        if is_run_dir(path):
            found.append(path)
        elif job_dirs(path):
            found += job_dirs(path)
        else:
            raise CnnlabError(f"RUN_DIR {raw} holds no cnnlab run: a run dir has config.yaml and checkpoints/, a "
                              "sweep dir has job dirs named 0, 1, 2, ... Valid: e.g. logs/runs/<date>/<time>.")
    return found


def open_runs(paths: Sequence[str | Path]) -> list[ExploreRun]:
    """Every run under `paths`, loaded from its best checkpoint (else last.ckpt); refused by name when a run has
    no checkpoint or its model no longer exists."""
    from cnnlab.checkpoints import load_trained_module

    runs = [read_run(path, name="/".join(path.resolve().parts[-2:])) for path in expand(paths)]
    keys, _ = varying(runs)
    opened = []
    for run in runs:
        checkpoint = _checkpoint(run.dir)
        module = load_trained_module(checkpoint, f"RUN_DIR {run.dir}")
        net = module.net.eval()
        mean, std = _normalisation(run.config)
        opened.append(ExploreRun(run=run, label=label(run, keys) if len(runs) > 1 else run.name,
                                 checkpoint=checkpoint, net=net, class_names=list(module.class_names),
                                 mean=mean, std=std, rf=theoretical_rf(net), below=local_rf(net),
                                 data_config={k: run.config.get(k) for k in ("data", "transforms", "paths")}))
    return opened


def _checkpoint(run_dir: Path) -> Path:
    found = (sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
             or sorted((run_dir / "checkpoints").glob("last.ckpt")))
    if not found:
        raise CnnlabError(f"RUN_DIR {run_dir} has no checkpoint (no checkpoints/best-*.ckpt or last.ckpt), so there "
                          "is no trained network to explore. Valid: a run dir whose training saved a checkpoint "
                          "(every cnnlab-train run does unless trainer.enable_checkpointing=false).")
    return found[-1]


def _normalisation(config: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The mean and std the run's transforms normalised with, from its data settings (None when it did not)."""
    if not (config.get("transforms") or {}).get("normalize", False):
        return None, None
    spec = _datamodule(config).spec
    return (torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1),
            torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1))


_DATAMODULES: dict[str, Any] = {}  # one per data setting: a sweep's runs share it


def _datamodule(config: dict[str, Any]):
    from cnnlab.data import datamodule_from_config

    key = json.dumps({k: config.get(k) for k in ("data", "transforms", "paths")}, sort_keys=True, default=str)
    if key not in _DATAMODULES:
        _DATAMODULES[key] = datamodule_from_config(config)
    return _DATAMODULES[key]


def _validation_images(run: ExploreRun, count: int) -> Images:
    from cnnlab.data.probe import probe_images

    try:
        datamodule = _datamodule(run.run.config)
        if datamodule.val_set is None:
            datamodule.setup("fit")
        x, y = probe_images(datamodule.val_set, count)
    except (CnnlabError, OSError, RuntimeError) as err:
        shape = run.input_shape
        return Images(torch.zeros(0, *shape), [], [], f"the run's validation images could not be read: {err}")
    raw = x if run.mean is None else x * run.std + run.mean
    labels = [int(v) for v in y]
    first: dict[int, int] = {}
    for i, value in enumerate(labels):
        first.setdefault(value, i)
    return Images(raw.float().clamp(0, 1).contiguous(), labels, [first[k] for k in sorted(first)])

"""cnnlab from Python (a notebook, a script): the same paths the commands take.

    import cnnlab
    cnnlab.list_models("res*")                               # ['resnet18', 'resnet20']
    net = cnnlab.create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28)
    cfg = cnnlab.compose(["model=simple_cnn", "debug=test"])  # the config cnnlab-train would run with
    results = cnnlab.run(["model=simple_cnn", "debug=test"])  # train and test as cnnlab-train does
    run = cnnlab.load_run("logs/runs/2026-12-02/10-00-00")    # run.net, run.config, run.results, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.checkpoints import load_trained_net, resolve_checkpoint
from cnnlab.config import compose
from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models

__all__ = ["TrainedRun", "compose", "create_model", "list_models", "load_run", "run"]


def run(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train and test one run as `cnnlab-train OVERRIDES` does (same config, run dir, checkpoints, loggers,
    pictures, probes); returns what it writes to <run dir>/results.json. Bad input raises CnnlabError."""
    from cnnlab.train import train

    return train(compose(overrides, run_dir))


@dataclass
class TrainedRun:
    """A finished (or stopped) run read back from its run dir."""

    run_dir: Path
    config: dict[str, Any]                 # the resolved config.yaml
    results: dict[str, Any] | None         # results.json (None: the run did not finish)
    probes: dict[str, float]               # the probes' latest numbers
    checkpoint: Path                       # the checkpoint `net` was loaded from (best-*.ckpt, else last.ckpt)
    net: torch.nn.Module = field(repr=False)  # the trained network, in eval mode, on the CPU


def load_run(run_dir: str | Path) -> TrainedRun:
    """The run in `run_dir` (logs/runs/<date>/<time>, or a sweep's job dir): its network, config and results."""
    from cnnlab.reports.runs import read_run

    path = Path(run_dir).expanduser()
    if not (path / "config.yaml").is_file():
        raise CnnlabError(f"load_run({str(run_dir)!r}): not a cnnlab run dir (it has no config.yaml). Valid: a "
                          "folder cnnlab-train wrote, e.g. logs/runs/<date>/<time> or a sweep's <sweep dir>/<job>.")
    checkpoint = resolve_checkpoint(path, "load_run")
    net = load_trained_net(checkpoint, None, "load_run")
    read = read_run(path)
    return TrainedRun(path, read.config, read.results, read.probes, checkpoint, net)

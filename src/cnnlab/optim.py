"""Optimizers and learning-rate schedules by name, from the `optimizer` and `scheduler` config groups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from cnnlab.registry import Registry, split_spec

OPTIMIZERS: Registry[type[torch.optim.Optimizer]] = Registry("optimizer", config_key="optimizer.name")
OPTIMIZERS.register("sgd")(torch.optim.SGD)
OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)

# Each scheduler factory gets (optimizer, max_epochs, total_steps, **options) and says how often it steps.
SCHEDULERS: Registry[Callable[..., tuple[Any, str]]] = Registry("scheduler", config_key="scheduler.name")


@SCHEDULERS.register("cosine")
def _cosine(opt, max_epochs, total_steps, eta_min=0.0):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs), eta_min=eta_min), "epoch"


@SCHEDULERS.register("step")
def _step(opt, max_epochs, total_steps, step_size=2, gamma=0.5):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma), "epoch"


@SCHEDULERS.register("onecycle")
def _onecycle(opt, max_epochs, total_steps, max_lr=0.01, pct_start=0.25):
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total_steps,
                                               pct_start=pct_start), "step"


def build_optimizer(spec: Mapping[str, Any], params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    name, options = split_spec(spec, "optimizer")
    return OPTIMIZERS.build(name, params, **options)


def build_scheduler(spec: Mapping[str, Any] | None, opt: torch.optim.Optimizer, max_epochs: int,
                    total_steps: int) -> dict[str, Any] | None:
    """A Lightning `lr_scheduler` dict, or None for `scheduler=none`."""
    if not spec or spec.get("name") in (None, "none"):
        return None
    name, options = split_spec(spec, "scheduler")
    scheduler, interval = SCHEDULERS.build(name, opt, max_epochs, total_steps, **options)
    return {"scheduler": scheduler, "interval": interval}

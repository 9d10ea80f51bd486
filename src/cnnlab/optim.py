"""Optimizers and learning-rate schedules by name, from the `optimizer` and `scheduler` config groups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.lightning_compat import norm_base_class
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
def _onecycle(opt, max_epochs, total_steps, max_lr=0.01, pct_start=0.25, **options):
    # options: OneCycleLR's own (anneal_strategy, div_factor, final_div_factor, cycle_momentum, ...). It sets
    # every group's rate itself, so a group's lr_scale (optimizer.norm_lr_scale) is applied to its peak here.
    peaks = [max_lr * group.get("lr_scale", 1.0) for group in opt.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=total_steps,
                                               pct_start=pct_start, **options), "step"


NORMS = (norm_base_class(), nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: nn.Module, norm_lr_scale: float, lr: float | None,
                     weight_decay: float | None) -> list[dict[str, Any]] | Iterable[nn.Parameter]:
    """One group, or two when normalisation layers' parameters (the batch-norm shifts of fast_cnn) learn at
    `norm_lr_scale` × the rate: their weight decay is divided by the same factor, so the decay per step
    (rate × decay) stays that of the other weights (airbench's "bias scaler")."""
    if norm_lr_scale == 1:
        return model.parameters()
    norm_ids = {id(p) for m in model.modules() if isinstance(m, NORMS) for p in m.parameters(recurse=False)}
    norm = [p for p in model.parameters() if id(p) in norm_ids]
    other = [p for p in model.parameters() if id(p) not in norm_ids]
    group = {"params": norm, "lr_scale": norm_lr_scale}
    if lr is not None:
        group["lr"] = lr * norm_lr_scale
    if weight_decay:
        group["weight_decay"] = weight_decay / norm_lr_scale
    return [group, {"params": other, "lr_scale": 1.0}]


def build_optimizer(spec: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer a config names, over `model`'s parameters; `norm_lr_scale` (any optimizer) scales the rate
    of the normalisation layers' parameters."""
    name, options = split_spec(spec, "optimizer")
    scale = options.pop("norm_lr_scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise CnnlabError(f"optimizer.norm_lr_scale={scale!r} is not valid. Valid: a number > 0, the factor on the "
                          "learning rate of normalisation layers' parameters (1: the same as every other weight).")
    groups = parameter_groups(model, float(scale), options.get("lr"), options.get("weight_decay"))
    return OPTIMIZERS.build(name, groups, **options)


def build_scheduler(spec: Mapping[str, Any] | None, opt: torch.optim.Optimizer, max_epochs: int,
                    total_steps: int) -> dict[str, Any] | None:
    """A Lightning `lr_scheduler` dict, or None for `scheduler=none`."""
    if not spec or spec.get("name") in (None, "none"):
        return None
    name, options = split_spec(spec, "scheduler")
    scheduler, interval = SCHEDULERS.build(name, opt, max_epochs, total_steps, **options)
    return {"scheduler": scheduler, "interval": interval}

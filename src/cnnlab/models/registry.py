"""The model registry and its one constructor contract."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.layers import ACTIVATIONS, POOLINGS
from cnnlab.models.base import StagedModel
from cnnlab.registry import Registry, Spec, spec_name

MODELS: Registry[Callable[..., StagedModel]] = Registry("model", config_key="model.name")
register_model = MODELS.register

# Every model takes these, so any model runs through the same ablation axes.
CONTRACT = ("num_classes", "in_channels", "image_size", "pooling", "activation", "depth", "width")


NATIVE = "native"


def _native_to_default(spec: Spec, default: str, names: Registry) -> Spec:
    """`native` → the architecture's own choice; an unknown name fails here, listing `native` among the valid."""
    name = spec_name(spec)
    if name == NATIVE:
        return default
    if name is not None and name not in names:
        raise unknown_name(names.kind, name, [*names.names(), NATIVE], names.config_key)
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """The registered model names matching a shell-style wildcard, as timm's list_models: `list_models("res*")`."""
    import fnmatch

    return [name for name in MODELS.names() if fnmatch.fnmatchcase(name, pattern)]


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    pooling: Spec = NATIVE,
    activation: Spec = NATIVE,
    depth: int | None = None,
    width: int | None = None,
    **extra: Any,
) -> StagedModel:
    """Build a registered model; knobs it does not have give a clear error, not a bare TypeError.

    `pooling`/`activation` named `native` mean the architecture's own choice (its constructor's default).
    """
    constructor = MODELS.get(name)
    params = inspect.signature(constructor).parameters
    pooling = _native_to_default(pooling, params["pooling"].default, POOLINGS)
    activation = _native_to_default(activation, params["activation"].default, ACTIVATIONS)
    accepted = set(params) - set(CONTRACT)
    unknown = sorted(set(extra) - accepted)
    if unknown:
        have = ", ".join(sorted(accepted)) or "none beyond the common ones"
        raise CnnlabError(
            f"model '{name}' has no option(s) {', '.join(f'model.{k}' for k in unknown)}. "
            f"Its own options: {have}; every model also takes {', '.join(CONTRACT)}."
        )
    return constructor(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        pooling=pooling,
        activation=activation,
        depth=depth,
        width=width,
        **extra,
    )

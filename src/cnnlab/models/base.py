"""Models as an ordered list of named stages: forward runs them in turn, pictures and probes tap them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError, whole_number
from cnnlab.registry import Spec, spec_name

_SHRINK_HINTS = ("too small", "can't be greater than actual input size")


def _fmt(shape: tuple[int, ...]) -> str:
    return f"{shape[-2]}×{shape[-1]}" if len(shape) >= 2 else f"{shape[-1]} features"


def _describe(module: nn.Module) -> str:
    return " + ".join(_layer_labels(module)) or type(module).__name__


def _layer_labels(module: nn.Module) -> list[str]:
    """The convs and poolings of a stage, in order, as a reader would name them."""
    if hasattr(module, "layer_label"):
        return [module.layer_label]
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size, module.stride
        return [f"conv {k[0]}×{k[1]} stride {s[0]}"]
    return [label for child in module.children() for label in _layer_labels(child)]


@contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """`net` in eval mode for the block, then every submodule back in the mode it had (a module trained with a
    frozen part keeps it frozen): what pictures and probes use to look without changing training."""
    modes = {module: module.training for module in net.modules()}
    net.eval()
    try:
        yield net
    finally:
        for module, training in modes.items():
            module.training = training


class StagedModel(nn.Module):
    """Subclasses call `add_stage` while building; each stage is traced on a zero image right away,
    so a setting that shrinks the feature map below 1×1 fails at construction with names and sizes."""

    #: what `forward` returns: "logits" (scores for a softmax), or "lengths" (capsule lengths in [0, 1), capsnet):
    #: the loss a run picks under `loss=null` (cnnlab.losses)
    output_kind = "logits"

    def __init__(self, model_name: str, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.stages = nn.ModuleDict()
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._trace = torch.zeros(1, *input_shape)

    def add_stage(self, name: str, module: nn.Module) -> tuple[int, ...]:
        """Append a stage and return its output shape (without the batch dimension)."""
        y = self._run_traced(name, module)
        self.stages[name] = module
        self._shapes[name] = tuple(y.shape[1:])
        self._trace = y
        return self._shapes[name]

    def probe_shape(self, name: str, module: nn.Module) -> tuple[int, ...]:
        """The output shape `module` would give as the next stage, with the same clear error if it shrinks."""
        return tuple(self._run_traced(name, module).shape[1:])

    def _run_traced(self, name: str, module: nn.Module) -> torch.Tensor:
        x = self._trace
        was_training = module.training
        module.eval()  # batch norm cannot take a batch of one in training mode
        try:
            with torch.no_grad():
                y = module(x)
        except RuntimeError as err:
            if not any(hint in str(err) for hint in _SHRINK_HINTS):
                raise
            raise self._shrink_error(name, module, tuple(x.shape[1:])) from None
        finally:
            module.train(was_training)
        if y.dim() == 4 and min(y.shape[-2:]) < 1:
            raise self._shrink_error(name, module, tuple(x.shape[1:]))
        return y

    def _shrink_error(self, name: str, module: nn.Module, got: tuple[int, ...]) -> CnnlabError:
        path = " → ".join([f"input {_fmt(self.input_shape)}"] + [f"{n} {_fmt(s)}" for n, s in self._shapes.items()])
        fit = sum(1 for s in self._shapes.values() if len(s) == 3)
        return CnnlabError(
            f"model '{self.model_name}' shrinks the feature map below 1×1: stage '{name}' "
            f"({_describe(module)}) receives a {_fmt(got)} map and cannot reduce it further. "
            f"Sizes so far: {path} → {name} <1×1. Valid settings keep every map at least 1×1: "
            f"at most {fit} such stage(s) at this input size (lower model.depth), a larger "
            f"model.image_size, or pooling=none."
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return x

    def auxiliary_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """A term the model adds to the training objective for the images `x` (labels `y`) it has just run forward
        on, as capsnet's reconstruction error; None (the default) for none."""
        return None

    def named_stages(self) -> list[tuple[str, nn.Module]]:
        """The layers pictures and probes look at, in forward order."""
        return list(self.stages.items())

    def stage_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each stage's output shape for one image (C, H, W) or (features,)."""
        return dict(self._shapes)


def reject_knob(model: str, knob: str, value: Any, why: str) -> None:
    """A contract knob that a model does not have: say so instead of silently ignoring it."""
    if value is not None:
        raise CnnlabError(f"model '{model}' has no {knob} knob ({why}), but model.{knob}={value} was given. "
                          f"Set model.{knob}=null, or pick a model with a {knob} knob (e.g. model=simple_cnn).")


def positive_int(model: str, knob: str, value: Any, default: int) -> int:
    """A knob's value (its default when null), refused unless it is a positive integer."""
    return whole_number(f"model.{knob}", default if value is None else value,
                        valid=f"model '{model}' uses {default} when model.{knob}=null.")


def require_no_pooling(model: str, pooling: Spec, why: str) -> None:
    """Models without feature maps (MLP, ViT) take pooling=none only: refuse the others instead of ignoring them."""
    name = spec_name(pooling)
    if name != "none":
        raise CnnlabError(f"model '{model}' has no feature maps to pool ({why}), so pooling={name} does not apply. "
                          f"Valid: pooling=native or pooling=none, or a convolutional model (e.g. model=simple_cnn).")

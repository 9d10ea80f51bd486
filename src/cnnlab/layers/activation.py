"""Activations by name, so `activation=tanh` swaps the non-linearity in every layer of a model."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from cnnlab.registry import Registry, Spec, split_spec

ACTIVATIONS: Registry[Callable[..., nn.Module]] = Registry("activation", config_key="activation.name")

ACTIVATIONS.register("relu")(lambda: nn.ReLU(inplace=True))
ACTIVATIONS.register("leaky_relu")(lambda negative_slope=0.01: nn.LeakyReLU(negative_slope, inplace=True))
ACTIVATIONS.register("gelu")(lambda: nn.GELU())
ACTIVATIONS.register("silu")(lambda: nn.SiLU(inplace=True))
ACTIVATIONS.register("tanh")(lambda: nn.Tanh())
ACTIVATIONS.register("sigmoid")(lambda: nn.Sigmoid())
# Without a non-linearity stacked convolutions collapse into one linear map: the ablation baseline.
ACTIVATIONS.register("identity")(lambda: nn.Identity())


def make_activation(spec: Spec) -> nn.Module:
    """Build an activation from a name or a `{name: ..., **options}` config."""
    name, options = split_spec(spec, "activation")
    return ACTIVATIONS.build(name, **options)


def replace_activations(root: nn.Module, kinds: tuple[type[nn.Module], ...], spec: Spec) -> None:
    """Swap every `kinds` module inside a borrowed building block (torchvision's ResNet, DenseNet and ViT blocks
    hard-code ReLU or GELU) for the chosen activation."""
    for parent in root.modules():
        for name, child in parent.named_children():
            if isinstance(child, kinds):
                setattr(parent, name, make_activation(spec))

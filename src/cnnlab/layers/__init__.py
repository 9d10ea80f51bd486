"""Layer factories by name, shared by every model: activation, pooling and the conv block."""

from cnnlab.layers.activation import ACTIVATIONS, make_activation, replace_activations
from cnnlab.layers.conv import ConvBlock, make_norm
from cnnlab.layers.pooling import POOLINGS, make_pooling

__all__ = ["ACTIVATIONS", "POOLINGS", "ConvBlock", "make_activation", "make_norm", "make_pooling",
           "replace_activations"]

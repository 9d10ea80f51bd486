"""Layer factories by name, shared by every model: activation, pooling and the conv block."""

from cnnlab.layers.activation import ACTIVATIONS, make_activation
from cnnlab.layers.conv import ConvBlock
from cnnlab.layers.pooling import POOLINGS, make_pooling

__all__ = ["ACTIVATIONS", "POOLINGS", "ConvBlock", "make_activation", "make_pooling"]

"""The maths and drawing behind cnnlab's pictures: each function takes a model or numbers and returns a
`Picture` (an RGB array with its caption). The callbacks in `cnnlab.callbacks.pictures` decide when to draw
and where the pictures go (W&B, TensorBoard, PNGs under the run dir)."""

from cnnlab.pictures.render import Picture

__all__ = ["Picture"]

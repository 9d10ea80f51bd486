"""A multilayer perceptron on the flattened image: no locality, no weight sharing, the baseline the seed articles
compare CNNs against ("would the same be true for other types of deep neural networks?")."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.layers import make_activation
from cnnlab.models.base import Spec, StagedModel, positive_int, require_no_pooling
from cnnlab.models.registry import register_model


@register_model("mlp")
class MLP(StagedModel):
    """`depth` hidden layers of `width` units (Linear → activation), then a linear classifier."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: Spec = "none",
        activation: Spec = "relu",
        depth: int | None = None,
        width: int | None = None,
    ) -> None:
        require_no_pooling("mlp", pooling, "it flattens the image into one vector")
        depth = positive_int("mlp", "depth", depth, 2)
        width = positive_int("mlp", "width", width, 256)
        super().__init__("mlp", (in_channels, image_size, image_size))
        features = in_channels * image_size * image_size
        for i in range(depth):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if i == 0:
                layers["flatten"] = nn.Flatten()
            layers["linear"] = nn.Linear(features, width)
            layers["act"] = make_activation(activation)
            self.add_stage(f"fc{i + 1}", nn.Sequential(layers))
            features = width
        self.add_stage("logits", nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes)))

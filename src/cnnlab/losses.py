"""The training objective, chosen by the top-level `loss` key (conf/train.yaml) rather than by a case in the training
loop: a classification loss on the model's outputs, plus any auxiliary loss the model itself adds (capsnet's
reconstruction). `loss=null` is the model's own: the margin loss for a model that outputs capsule lengths (capsnet),
cross-entropy for every model that outputs logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError

LOSSES = ("cross_entropy", "margin")
#: the margin loss's constants (Sabour et al. 2017, eq. 4): a present class's length should reach M_PLUS, an absent
#: class's stay below M_MINUS, and the absent classes' term is weighed down by DOWN_WEIGHT (λ)
M_PLUS, M_MINUS, DOWN_WEIGHT = 0.9, 0.1, 0.5


def margin_loss(lengths: torch.Tensor, target: torch.Tensor, m_plus: float = M_PLUS, m_minus: float = M_MINUS,
                down_weight: float = DOWN_WEIGHT) -> torch.Tensor:
    """Sabour et al. 2017, eq. 4, summed over the classes k and averaged over the batch:
    L_k = T_k · max(0, m⁺ − l_k)² + λ · (1 − T_k) · max(0, l_k − m⁻)², with l_k the class's score (a capsule
    length) and T_k = 1 for the true class only."""
    present = F.one_hot(target, lengths.shape[1]).to(lengths.dtype)
    per_class = (present * (m_plus - lengths).clamp_min(0).square()
                 + down_weight * (1 - present) * (lengths - m_minus).clamp_min(0).square())
    return per_class.sum(dim=1).mean()


def default_loss(output_kind: str) -> str:
    """The loss a model trains with under `loss=null`: margin for capsule lengths, cross-entropy for logits."""
    return "margin" if output_kind == "lengths" else "cross_entropy"


class Objective(nn.Module):
    """`objective(net, x, outputs, y)`: the classification loss of `outputs` (what `net` gave for the images `x`)
    against the labels `y`, plus `net.auxiliary_loss(x, y)` where the model has one.

    `cross_entropy` takes the outputs as logits, with `label_smoothing` (capsule lengths, too: they lie in [0, 1),
    so softmax over them stays flat and it trains slowly: an ablation, not a recipe). `margin` scores capsule
    lengths as they are and a model's logits through a softmax (probabilities in [0, 1], as lengths are)."""

    def __init__(self, loss: str | None, output_kind: str = "logits", label_smoothing: float = 0.0) -> None:
        super().__init__()
        name = default_loss(output_kind) if loss is None else loss
        if name not in LOSSES:
            raise CnnlabError(f"loss={loss!r} is not valid. Valid: loss=null (the model's own: margin for capsnet, "
                              f"cross_entropy for every other model), loss=cross_entropy or loss=margin.")
        if name == "margin" and label_smoothing:
            chosen = "loss=null, the model's own" if loss is None else "loss=margin"
            raise CnnlabError(f"label_smoothing={label_smoothing} smooths cross-entropy's targets, and the loss here "
                              f"is the margin loss ({chosen}), which has no soft targets. Valid: label_smoothing=0 "
                              f"with the margin loss, or loss=cross_entropy with label smoothing.")
        self.name, self.output_kind, self.label_smoothing = name, output_kind, label_smoothing

    def classification(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.name == "cross_entropy":
            return F.cross_entropy(outputs, y, label_smoothing=self.label_smoothing)
        scores = outputs if self.output_kind == "lengths" else torch.softmax(outputs, dim=1)
        return margin_loss(scores, y)

    def forward(self, net: nn.Module, x: torch.Tensor, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.classification(outputs, y)
        extra = net.auxiliary_loss(x, y)
        return loss if extra is None else loss + extra

    def extra_repr(self) -> str:
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"{self.name} on {self.output_kind}{smoothing}"

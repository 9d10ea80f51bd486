"""The capsule network of Sabour, Frosst & Hinton 2017 ("Dynamic routing between capsules"): a 9×9 conv, a layer of
primary capsules (a 9×9 stride-2 conv whose channels are read as 8-D capsule vectors, squashed), and one 16-D digit
capsule per class. Every primary capsule votes for every digit capsule through its own learned 8×16 transform, and
dynamic routing by agreement weighs the votes. The class scores are the digit capsules' lengths, trained with the
margin loss (cnnlab.losses); a decoder that rebuilds the image from the class's capsule is an option. Capsules take
the place of pooling, so there is none to choose."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import make_activation
from cnnlab.models.base import Spec, StagedModel, positive_int, reject_knob
from cnnlab.models.registry import register_model
from cnnlab.registry import spec_name

#: the reconstruction error's weight in the loss (Sabour et al.: small, so it does not dominate the margin loss)
RECONSTRUCTION_WEIGHT = 0.0005


def squash(s: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """Sabour et al. eq. 1 along `dim`: v = |s|²/(1 + |s|²) · s/|s|, the direction kept and the length mapped into
    [0, 1), short vectors to almost 0 and long ones to almost 1 (a zero vector stays zero)."""
    norm_sq = (s * s).sum(dim=dim, keepdim=True)
    return s * (norm_sq / (1 + norm_sq) / torch.sqrt(norm_sq + eps))


class PrimaryCapsules(nn.Module):
    """A 9×9 stride-2 conv to `types`·`dim` channels, read as `types` capsules of `dim` numbers at each position,
    each squashed: (B, types·dim, h, w), capsule type t in channels t·dim … (t+1)·dim − 1. It stays a feature map,
    so pictures and probes see it as one."""

    def __init__(self, in_channels: int, types: int, dim: int, kernel_size: int = 9, stride: int = 2) -> None:
        super().__init__()
        self.types, self.dim = types, dim
        self.conv = nn.Conv2d(in_channels, types * dim, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        b, _, h, w = y.shape
        return squash(y.reshape(b, self.types, self.dim, h, w), dim=2).reshape(b, -1, h, w)


class DigitCapsules(nn.Module):
    """(B, types·in_dim, h, w) primary capsules → (B, classes·out_dim), the `classes` digit capsules one after the
    other. Primary capsule i (a type at a position) predicts digit capsule j as û_j|i = W_ij u_i, with its own
    learned W_ij (out_dim × in_dim) per (type, position, class); `routing_iters` rounds of routing by agreement
    weigh the predictions (`route`)."""

    layer_label = "capsules routed by agreement"

    def __init__(self, types: int, in_dim: int, grid: tuple[int, int], classes: int, out_dim: int,
                 routing_iters: int) -> None:
        super().__init__()
        self.types, self.in_dim, self.classes, self.out_dim = types, in_dim, classes, out_dim
        self.routing_iters = routing_iters
        self.inputs = types * grid[0] * grid[1]
        # σ = 0.01: every digit capsule starts short (length ~0.003 on MNIST), below the margin loss's m⁻. A unit-
        # scale draw (σ = 1/√in_dim) starts every length near 0.6-0.9, where the squash is flat: in a short check
        # on MNIST, σ = 0.01 and 0.05 were past 90 % after 100 Adam steps, 1/√8 at 12 %.
        self.weight = nn.Parameter(0.01 * torch.randn(self.inputs, classes, out_dim, in_dim))

    def predictions(self, x: torch.Tensor) -> torch.Tensor:
        """û: (B, classes, out_dim, inputs), û[b, j, :, i] = W_ij u_i; primary capsule i = type·h·w + position."""
        b = x.shape[0]
        u = x.reshape(b, self.types, self.in_dim, -1).transpose(2, 3).reshape(b, self.inputs, self.in_dim)
        return torch.einsum("njde,bne->bjdn", self.weight, u)

    def route(self, u_hat: torch.Tensor, iterations: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sabour et al.'s procedure 1: (v, c), the digit capsules (B, classes, out_dim) and the coupling
        coefficients c (B, inputs, classes) the last round weighed the predictions with: each primary capsule's sum
        to 1 over the classes, c_ij = softmax_j(b_ij), where the logits b_ij start at 0 and each round adds the
        agreement û_j|i · v_j; then s_j = Σ_i c_ij û_j|i and v_j = squash(s_j)."""
        iterations = self.routing_iters if iterations is None else iterations
        batch, classes, _, inputs = u_hat.shape
        # Round 1: every logit is 0, so every coupling is 1/classes and s_j is a plain sum over all primary
        # capsules (which the receptive-field tracer reads as a global pooling, as it is)
        c = u_hat.new_full((batch, classes, inputs), 1 / classes)
        v = squash(u_hat.sum(dim=3) / classes)
        logits = u_hat.new_zeros(batch, classes, inputs)
        for _ in range(iterations - 1):
            logits = logits + torch.einsum("bjdn,bjd->bjn", u_hat, v)
            c = torch.softmax(logits, dim=1)
            v = squash(torch.einsum("bjdn,bjn->bjd", u_hat, c))
        return v, c.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, _ = self.route(self.predictions(x))
        return v.flatten(1)


class CapsuleLengths(nn.Module):
    """(B, classes·dim) digit capsules → (B, classes) their lengths, each in [0, 1): the class scores."""

    def __init__(self, classes: int, dim: int) -> None:
        super().__init__()
        self.classes, self.dim = classes, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x.reshape(x.shape[0], self.classes, self.dim), dim=-1)


class Decoder(nn.Module):
    """The digit capsules with every class's but one zeroed → FC 512 → FC 1024 → C·H·W, a sigmoid: the image
    rebuilt from one class's capsule (Sabour et al. fig. 2)."""

    def __init__(self, classes: int, dim: int, image_shape: tuple[int, int, int], activation: Spec) -> None:
        super().__init__()
        self.classes, self.dim, self.image_shape = classes, dim, tuple(image_shape)
        self.layers = nn.Sequential(OrderedDict(
            fc1=nn.Linear(classes * dim, 512), act1=make_activation(activation),
            fc2=nn.Linear(512, 1024), act2=make_activation(activation),
            fc3=nn.Linear(1024, math.prod(image_shape))))

    def forward(self, capsules: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        mask = F.one_hot(classes, self.classes).to(capsules.dtype).unsqueeze(-1)
        masked = (capsules.reshape(-1, self.classes, self.dim) * mask).flatten(1)
        return torch.sigmoid(self.layers(masked)).reshape(-1, *self.image_shape)


def pixel_target(x: torch.Tensor) -> torch.Tensor:
    """What the decoder rebuilds: the input rescaled to [0, 1] per image and channel (its darkest pixel 0, its
    brightest 1). The network sees normalised pixels; this undoes a per-channel normalisation up to each image's
    contrast, exactly for an MNIST digit with a black and a white pixel."""
    flat = x.flatten(2)
    low, high = flat.amin(dim=2, keepdim=True), flat.amax(dim=2, keepdim=True)
    return ((flat - low) / (high - low).clamp_min(1e-8)).reshape_as(x)


def refuse_pooling(pooling: Spec) -> None:
    name = spec_name(pooling)
    if name != "none":
        raise CnnlabError(f"model 'capsnet' has no pooling: its capsules replace it (routing by agreement sends each "
                          f"primary capsule's vote to the digit capsules that agree with it, where pooling would keep "
                          f"only the strongest unit of a window, Sabour et al. 2017), so pooling={name} does not "
                          f"apply. Valid: pooling=native or pooling=none, or a pooled conv net (e.g. "
                          f"model=simple_cnn).")


@register_model("capsnet")
class CapsNet(StagedModel):
    """Stages `conv1` (width, H−8, W−8), `primary_caps` (primary_caps·primary_dim, h, w) after the squash,
    `digit_caps` (classes·digit_dim,): the routed digit capsules one class after the other, and `logits`
    (classes,): their lengths. `activation` is conv1's (and the decoder's hidden layers'); the capsules' own
    non-linearity is the squash. With `reconstruction`, `auxiliary_loss` adds 0.0005 × the decoder's summed
    squared error, the decoder fed the true class's capsule in training and the predicted class's in eval."""

    output_kind = "lengths"

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
        routing_iters: int = 3,
        primary_caps: int = 32,
        primary_dim: int = 8,
        digit_dim: int = 16,
        reconstruction: bool = False,
    ) -> None:
        name = "capsnet"
        refuse_pooling(pooling)
        reject_knob(name, "depth", depth, "its layers are fixed: conv1, primary capsules, digit capsules; "
                    "model.routing_iters sets how many rounds of routing, model.width conv1's channels")
        width = positive_int(name, "width", width, 256)
        routing_iters = positive_int(name, "routing_iters", routing_iters, 3)
        primary_caps = positive_int(name, "primary_caps", primary_caps, 32)
        primary_dim = positive_int(name, "primary_dim", primary_dim, 8)
        digit_dim = positive_int(name, "digit_dim", digit_dim, 16)
        if not isinstance(reconstruction, bool):
            raise CnnlabError(f"model.reconstruction={reconstruction!r} is not valid. Valid: model.reconstruction="
                              f"true (add the decoder and its loss) or false.")
        super().__init__(name, (in_channels, image_size, image_size))
        self.add_stage("conv1", nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, width, 9),
                                                          act=make_activation(activation))))
        _, h, w = self.add_stage("primary_caps", PrimaryCapsules(width, primary_caps, primary_dim))
        self.add_stage("digit_caps", DigitCapsules(primary_caps, primary_dim, (h, w), num_classes, digit_dim,
                                                   routing_iters))
        self.add_stage("logits", CapsuleLengths(num_classes, digit_dim))
        self.decoder = Decoder(num_classes, digit_dim, self.input_shape, activation) if reconstruction else None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (input, its digit capsules), for the decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for name, stage in self.stages.items():
            h = stage(h)
            if name == "digit_caps" and self.decoder is not None:
                self._last = (x, h)  # `auxiliary_loss` on the same batch reuses them instead of routing again
        return h

    def digit_capsules(self, x: torch.Tensor) -> torch.Tensor:
        """(B, classes·digit_dim): the `digit_caps` stage's output for the images `x`."""
        for name, stage in self.stages.items():
            x = stage(x)
            if name == "digit_caps":
                return x
        raise AssertionError("capsnet has a digit_caps stage")

    def reconstruct(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's image for each of `x`, from the capsule of `classes` (None: each image's predicted
        class); an error without `reconstruction`."""
        if self.decoder is None:
            raise CnnlabError("this capsnet has no decoder, so it cannot rebuild images. Valid: a capsnet built "
                              "with model.reconstruction=true.")
        capsules = self.digit_capsules(x)
        if classes is None:
            classes = self.stages["logits"](capsules).argmax(dim=1)
        return self.decoder(capsules, classes)

    def auxiliary_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """0.0005 × the summed squared error of the rebuilt image against `pixel_target(x)`, averaged over the
        batch; the decoder sees the true class's capsule in training and the predicted one's in eval. None
        without `reconstruction`."""
        if self.decoder is None:
            return None
        last, self._last = self._last, None
        capsules = last[1] if last is not None and last[0] is x else self.digit_capsules(x)
        classes = y if self.training else self.stages["logits"](capsules).argmax(dim=1)
        error = (self.decoder(capsules, classes) - pixel_target(x)).square().flatten(1).sum(dim=1)
        return RECONSTRUCTION_WEIGHT * error.mean()

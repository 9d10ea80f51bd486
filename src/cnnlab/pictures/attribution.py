"""Where a model looks: occlusion sensitivity (Zeiler & Fergus 2014), gradient saliency (Simonyan et al. 2014),
Grad-CAM (Selvaraju et al. 2017) and guided backprop (Springenberg et al. 2015), the last three through Captum."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.activations import stage_outputs
from cnnlab.pictures.render import Picture, colourise, fmt_shape, image_cell, normalise, tile


def grey_fill(x: torch.Tensor) -> torch.Tensor:
    """Mid-grey for each image: halfway between its darkest and brightest pixel. That is intensity 0.5
    for an image spanning 0..1, whatever normalisation the data went through."""
    flat = x.flatten(1)
    return ((flat.amin(1) + flat.amax(1)) / 2).view(-1, *[1] * (x.dim() - 1)).expand_as(x).contiguous()


def occlusion_map(net: nn.Module, x: torch.Tensor, target: torch.Tensor, patch: int = 7, stride: int = 2,
                  batch: int = 256) -> np.ndarray:
    """(B, H, W): the probability of class `target` with a grey `patch`×`patch` square centred on each
    pixel, as Zeiler & Fergus plot it: one forward pass per patch position (every `stride` pixels, the
    square kept inside the image); each pixel shows the position whose centre is nearest. Low values
    mark what the model needs to see.

    Written here rather than with Captum's Occlusion, which averages the drop over every position
    covering a pixel and so blurs the map by a whole patch width."""
    b, c, h, w = x.shape
    rows, cols = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    grey = grey_fill(x)
    probabilities = []
    with torch.no_grad():
        occluded = []
        for top in rows:
            for left in cols:
                copy = x.clone()
                copy[..., top:top + patch, left:left + patch] = grey[..., top:top + patch, left:left + patch]
                occluded.append(copy)
        stacked = torch.stack(occluded, dim=1).flatten(0, 1)  # image-major: (B · positions, C, H, W)
        for chunk in stacked.split(batch):
            probabilities.append(torch.softmax(net(chunk), dim=1))
    p = torch.cat(probabilities).view(b, len(rows) * len(cols), -1)
    p = p.gather(2, target.view(b, 1, 1).expand(b, p.shape[1], 1)).view(b, len(rows), len(cols))
    nearest_row = ((torch.arange(h) - patch // 2) / stride).round().clamp(0, len(rows) - 1).long()
    nearest_col = ((torch.arange(w) - patch // 2) / stride).round().clamp(0, len(cols) - 1).long()
    return p[:, nearest_row][:, :, nearest_col].cpu().double().numpy()


def saliency_map(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """(B, H, W): |∂ logit of `target` / ∂ input|, the largest over input channels (Simonyan et al. 2014)."""
    from captum.attr import Saliency

    with torch.enable_grad():
        grads = Saliency(net).attribute(x.clone().requires_grad_(True), target=target, abs=True)
    return grads.amax(dim=1).detach().cpu().double().numpy()


def gradcam_stage(net: nn.Module, x: torch.Tensor) -> tuple[str, tuple[int, ...]] | str:
    """(name, output shape) of the deepest stage with a feature map of more than one position, where Grad-CAM
    looks; or, for a model without one, the reason it has no Grad-CAM."""
    spatial = [(name, tuple(y.shape[1:])) for name, y in stage_outputs(net, x[:1])
               if y.dim() == 4 and y.shape[-1] * y.shape[-2] > 1]
    if spatial:
        return spatial[-1]
    kinds = {y.dim() for _, y in stage_outputs(net, x[:1])}
    what = "tokens, not feature maps" if 3 in kinds else "vectors, not feature maps"
    return (f"No Grad-CAM: it weighs the feature maps of a conv stage, and {net.model_name}'s stages "
            f"output {what}")


def gradcam_map(net: nn.Module, x: torch.Tensor, target: torch.Tensor, stage: str) -> np.ndarray:
    """(B, H, W): ReLU(Σ_k α_k A_k) at `stage`, α_k the mean gradient of the target logit over map k (Captum's
    LayerGradCam), upsampled bilinearly to the input size."""
    from captum.attr import LayerAttribution, LayerGradCam

    with torch.enable_grad():
        cam = LayerGradCam(net, net.stages[stage]).attribute(x, target=target, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return cam[:, 0].clamp_min(0).cpu().double().numpy()


def guided_refusal(net: nn.Module) -> str | None:
    """Why guided backprop does not apply to `net`, or None: it rectifies the gradient at ReLU modules, so a net
    with another non-linearity would get its plain gradient under the name."""
    if any(isinstance(m, nn.ReLU) for m in net.modules()):
        return None
    return (f"No guided backprop: it rectifies the gradient at each ReLU, and this {net.model_name} has none "
            f"(its activation is {activation_names(net)})")


def activation_names(net: nn.Module) -> str:
    kinds = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU)
    names = sorted({type(m).__name__ for m in net.modules() if isinstance(m, kinds)})
    return ", ".join(names) or "the identity"


def guided_backprop_map(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """(B, C, H, W): the gradient of the target logit with every ReLU passing back only positive gradient where
    its input was positive (Captum's GuidedBackprop)."""
    from captum.attr import GuidedBackprop

    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        grads = GuidedBackprop(net).attribute(x.clone().requires_grad_(True), target=target)
    return grads.detach().cpu().double().numpy()


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """An RGB cell: the image in grey, 45 % of it replaced by `heat` (0 … its max) in the jet colours."""
    grey = image_cell(image).mean(axis=-1, keepdims=True)
    return 0.55 * grey + 0.45 * colourise(normalise(heat, 0, heat.max()), "jet") / 255


def signed_cell(gradient: np.ndarray) -> np.ndarray:
    """A gradient (C, H, W) as an image cell on its own symmetric scale: mid-grey 0, colour per channel on RGB."""
    m = float(np.abs(gradient).max())
    return image_cell((gradient / m + 1) / 2 if m > 0 else np.full_like(gradient, 0.5), stretch=False)


def attribution_picture(net: nn.Module, x: torch.Tensor, target: torch.Tensor, labels: Sequence[str],
                        patch: int = 7, stride: int = 2,
                        forward_net: nn.Module | None = None) -> tuple[Picture, dict[str, np.ndarray]]:
    """A column per probe image; rows: the input, its occlusion map (probability 0 … 1, one fixed scale for
    all), its saliency map, Grad-CAM on the image and guided backprop (each image on its own scale). A model
    without a conv stage or without ReLUs loses that row, and the caption says why. Also returns the maps.
    `forward_net`: the same network for the occlusion's forward passes (the probes' faster twin), else `net`."""
    maps = {"occlusion": occlusion_map(forward_net or net, x, target, patch, stride),
            "saliency": saliency_map(net, x, target)}
    images = x.detach().cpu().numpy()
    cells = [image_cell(image) for image in images]
    cells += [colourise(m, "magma") / 255 for m in maps["occlusion"]]
    cells += [colourise(normalise(m, 0, m.max()), "hot") / 255 for m in maps["saliency"]]
    rows = [f"p(true class) with a grey {patch}×{patch} patch centred on each pixel (positions every {stride} px), "
            f"magma 0 (black) … 1 (pale yellow): dark = needed",
            "|∂ logit / ∂ input|, hot, each image on its own scale"]
    refused = []
    stage = gradcam_stage(net, x)
    if isinstance(stage, str):
        refused.append(stage)
    else:
        name, shape = stage
        maps["gradcam"] = gradcam_map(net, x, target, name)
        cells += [overlay(image, m) for image, m in zip(images, maps["gradcam"])]
        rows.append(f"Grad-CAM at {name} ({fmt_shape(shape)}, upsampled bilinearly) over the image in grey, jet "
                    f"0 (blue) … its max (red): red = the evidence for the true class")
    reason = guided_refusal(net)
    if reason:
        refused.append(reason)
    else:
        maps["guided_backprop"] = guided_backprop_map(net, x, target)
        cells += [signed_cell(g) for g in maps["guided_backprop"]]
        rows.append("guided backprop, mid-grey 0, each image on its own symmetric scale"
                    + (" (colour: the gradient per RGB channel)" if x.shape[1] == 3 else ""))
    with torch.no_grad():
        p = torch.softmax(net(x), 1).gather(1, target.view(-1, 1)).view(-1).tolist()
    caption = (f"Columns: the probe images (classes {', '.join(labels)}; p(true) = "
               f"{', '.join(f'{v:.2f}' for v in p)}). Rows: the input; " + "; ".join(rows) + "."
               + "".join(f" {r}." for r in refused))
    picture = Picture("attribution/methods", colourise(tile(cells, columns=len(x))), caption)
    return picture, maps

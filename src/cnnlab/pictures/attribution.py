"""Where a model looks: occlusion sensitivity (Zeiler & Fergus 2014) and gradient saliency (through Captum)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from cnnlab.pictures.render import Picture, colourise, image_cell, normalise, tile


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


def attribution_picture(net: nn.Module, x: torch.Tensor, target: torch.Tensor, labels: Sequence[str],
                        patch: int = 7, stride: int = 2) -> tuple[Picture, dict[str, np.ndarray]]:
    """Three rows, a column per probe image: the input, its occlusion map (probability 0 … 1, one fixed
    scale for all), its saliency map (each on its own scale). Also returns the maps themselves."""
    occlusion = occlusion_map(net, x, target, patch, stride)
    saliency = saliency_map(net, x, target)
    cells = [image_cell(image) for image in x.detach().cpu().numpy()]
    cells += [colourise(m, "magma") / 255 for m in occlusion]
    cells += [colourise(normalise(m, 0, m.max()), "hot") / 255 for m in saliency]
    with torch.no_grad():
        p = torch.softmax(net(x), 1).gather(1, target.view(-1, 1)).view(-1).tolist()
    caption = (f"Columns: the probe images (classes {', '.join(labels)}; p(true) = "
               f"{', '.join(f'{v:.2f}' for v in p)}). Rows: the input; p(true class) with a grey {patch}×{patch} "
               f"patch centred on each pixel (positions every {stride} px), magma 0 (black) … 1 (pale yellow): "
               f"dark = needed; |∂ logit / ∂ input|, each image on its own scale (hot).")
    picture = Picture("attribution/occlusion_saliency", colourise(tile(cells, columns=len(x))), caption)
    return picture, {"occlusion": occlusion, "saliency": saliency}

"""Images as a decorrelated, 1/f-scaled Fourier spectrum (Olah et al. 2017, "Feature Visualization", Distill;
Lucid's `fft_image` with `decay_power=1` and `to_valid_rgb`). A step of a given length in these parameters
moves an image mostly in its low frequencies and along natural colour directions, so gradient ascent paints
blobs, stripes and colours rather than the pixel-by-pixel noise it finds in plain pixel space."""

from __future__ import annotations

import torch

# Lucid's `color_correlation_svd_sqrt` (lucid/optvis/param/color.py): the square root, via SVD, of the
# correlation between the R, G and B values of ImageNet pixels. Divided by its largest column norm, as Lucid
# does, so that no decorrelated direction moves the colours more than one unit.
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                        [0.27, 0.00, -0.05],
                                        [0.27, -0.09, 0.03]])
COLOUR = COLOUR_CORRELATION_SQRT / COLOUR_CORRELATION_SQRT.norm(dim=0).max()
SOFTEN = 4.0  # Lucid's divisor of the inverse transform (Lucent: "increasing this seems to reduce saturation")
EDGE = 0.01   # images are read back pulled this far (a share of the range) inside it, off sigmoid's flat ends


def frequency_scale(height: int, width: int) -> torch.Tensor:
    """(height, width // 2 + 1): 1 / f per coefficient of `rfft2`, with f in cycles per pixel and the
    constant term counted as the lowest non-zero frequency, 1 / max(height, width)."""
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    frequency = (fx ** 2 + fy ** 2).sqrt().clamp_min(1 / max(height, width))
    return 1 / frequency


class FourierImage:
    """Images of `shape` (batch, channels, height, width) in `value_range`, spanned by a real spectrum tensor
    (batch, channels, height, width // 2 + 1, 2): scaled by 1/f, transformed back to pixels, mixed with
    ImageNet's colour correlation when there are 3 channels, and squashed into the range by a sigmoid."""

    def __init__(self, shape: tuple[int, ...], value_range: tuple[float, float],
                 device: torch.device | str = "cpu") -> None:
        self.shape = tuple(shape)
        self.low, self.high = value_range
        self.scale = frequency_scale(*self.shape[-2:]).to(device)
        self.colour = (COLOUR if self.shape[1] == 3 else torch.eye(self.shape[1])).to(device)

    def image(self, spectrum: torch.Tensor) -> torch.Tensor:
        """The images the spectrum stands for, differentiably."""
        planes = torch.fft.irfft2(torch.view_as_complex(spectrum) * self.scale, s=self.shape[-2:], norm="ortho")
        logits = torch.einsum("ij,bjhw->bihw", self.colour, planes / SOFTEN)
        return self.low + (self.high - self.low) * torch.sigmoid(logits)

    def spectrum(self, images: torch.Tensor) -> torch.Tensor:
        """The spectrum whose `image` is `images` (pixels within EDGE of the range's ends pulled in to EDGE):
        where to start from a real picture."""
        span = (self.high - self.low) or 1.0  # a constant probe batch: every image is `low`
        p = ((images - self.low) / span).clamp(EDGE, 1 - EDGE)
        planes = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.colour), p.logit()) * SOFTEN
        return torch.view_as_real(torch.fft.rfft2(planes, norm="ortho") / self.scale).contiguous()

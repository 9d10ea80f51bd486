"""Activation maximisation in a decorrelated Fourier parameterisation (cnnlab.pictures.fourier): its images
stay in the data's range and look like natural ones (smooth, colours correlated); on an RGB net they carry far
less high-frequency energy than pixel-space ascent yet still drive the channel; a planted colour filter comes
back as its pattern; "auto" picks Fourier on RGB only, and the pixel path is exactly what it was before."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models import create_model
from cnnlab.pictures.fourier import EDGE, FourierImage
from cnnlab.pictures.maximisation import channel_means, maximisation_picture, maximise, run_to

RANGE = (-1.5, 2.0)  # a normalised data set's probe min and max
SPAN = RANGE[1] - RANGE[0]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets run fastest on one thread, and a busy machine (a sweep beside the tests) slows two threads
    tenfold; the setting is put back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Random images in RANGE with as little fine detail as natural ones: 4×4 noise, enlarged bicubically."""
    coarse = torch.rand(n, channels, 4, 4, generator=torch.Generator().manual_seed(seed))
    fine = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    return RANGE[0] + SPAN * fine


def high_frequency_share(x: torch.Tensor) -> float:
    """The share of the images' spectral power (each plane's mean removed) above half the Nyquist frequency,
    i.e. above 0.25 cycles per pixel."""
    power = torch.fft.fft2(x - x.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
    fy, fx = torch.fft.fftfreq(x.shape[-2]).view(-1, 1), torch.fft.fftfreq(x.shape[-1]).view(1, -1)
    return float(power[..., (fx ** 2 + fy ** 2).sqrt() > 0.25].sum() / power.sum())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def rgb_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("simple_cnn", num_classes=10, in_channels=3, image_size=32, depth=2, width=4).eval()


# ---- the parameterisation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_any_spectrum_gives_images_of_the_right_shape_in_the_range_differentiably(channels):
    fourier = FourierImage((2, channels, 16, 12), RANGE)
    generator = torch.Generator().manual_seed(0)
    spectrum = (torch.randn(2, channels, 16, 7, 2, generator=generator) * 10).requires_grad_(True)  # very bright
    image = fourier.image(spectrum)
    assert image.shape == (2, channels, 16, 12)
    assert RANGE[0] <= image.min() < image.max() <= RANGE[1]
    (gradient,) = torch.autograd.grad(image[:, :, 5, 3].sum(), [spectrum])
    assert gradient.isfinite().all() and (gradient != 0).sum() > gradient.numel() / 2  # one pixel hears most of it
    assert torch.equal(fourier.image(spectrum), image)  # the spectrum alone decides the image


def test_an_image_read_back_into_a_spectrum_comes_out_again():
    """What lets ascent begin at the favourite probe image: image(spectrum(x)) is x, but for pixels within
    EDGE (1 %) of the range's ends, which move in to it."""
    x = smooth_images(3, 3, 20, seed=1)
    fourier = FourierImage(x.shape, RANGE)
    again = fourier.image(fourier.spectrum(x))
    inner = (x - RANGE[0] > EDGE * SPAN) & (RANGE[1] - x > EDGE * SPAN)
    assert inner.float().mean() > 0.9 and (again - x)[inner].abs().max() < 1e-4
    assert (again - x).abs().max() <= EDGE * SPAN * 1.001


def test_a_random_spectrum_looks_like_a_natural_image_smooth_and_in_correlated_colours():
    """White noise in the parameters is 1/f noise in the image: about a quarter of its power above a quarter
    cycle per pixel, where white pixel noise has 80 %; and R, G and B move together, as in ImageNet photographs."""
    fourier = FourierImage((8, 3, 32, 32), RANGE)
    spectrum = torch.randn(8, 3, 32, 17, 2, generator=torch.Generator().manual_seed(2)) * 0.3
    image = fourier.image(spectrum)
    assert high_frequency_share(image) < 0.35
    assert high_frequency_share(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))) > 0.7
    r, g, b = image.transpose(0, 1).flatten(1)
    assert min(correlation(r, g), correlation(g, b), correlation(r, b)) > 0.5


# ---- what maximisation gives ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 2])
def test_on_rgb_fourier_ascent_leaves_far_less_fine_noise_than_pixel_ascent_and_still_drives_the_channel(seed):
    """Same net, smooth probe images and channels: pixel-space results put 60-95 % of their power above half
    the Nyquist frequency, Fourier ones less in every stage and under 0.4 times as much over all stages (a
    channel that wants fine detail still gets some: block1 with seed 2), while taking every channel well past
    its value on the probe image it starts from (the one it likes best): more than twice as high in the conv
    blocks, more than 1.15 times for the logits of this untrained net."""
    net, probe = rgb_net(seed), smooth_images(6, 3, 32, seed=seed)
    _, pixel = maximisation_picture(net, probe, channels_per_stage=2, parameterisation="pixel")
    _, fourier = maximisation_picture(net, probe, channels_per_stage=2, parameterisation="fourier")
    assert list(fourier) == ["block1", "block2", "gap", "logits"]
    shares = {stage: (high_frequency_share(pixel[stage][1]), high_frequency_share(best))
              for stage, (_, best) in fourier.items()}
    assert all(f < p for p, f in shares.values()), shares
    assert sum(f for _, f in shares.values()) < 0.4 * sum(p for p, _ in shares.values()), shares
    with torch.no_grad():
        for stage, (channels, best) in fourier.items():
            assert pixel[stage][0] == channels
            reached = channel_means(run_to(net, stage, best))[range(len(channels)), channels]
            start = channel_means(run_to(net, stage, probe))[:, channels].max(dim=0).values
            assert (start > 0).all() and (reached > (1.15 if stage == "logits" else 2) * start).all(), stage


class PlantedFilters(nn.Module):
    """One stage: a conv whose two 32×32 filters are colour patterns as large as the image, so each channel
    is a single unit that an image drives hardest by being its filter's pattern."""

    def __init__(self, patterns: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, len(patterns), patterns.shape[-1], bias=False)
        self.conv.weight.data.copy_(patterns / patterns[0].numel())

    def named_stages(self):
        yield "conv", self.conv


def test_a_planted_colour_filter_comes_back_as_its_pattern():
    """Red left / green right and blue top / yellow bottom: from smooth random starts, the maximised image's
    red and green planes match their channel's pattern almost exactly and ignore the other channel's."""
    left = (torch.arange(32) < 16).float().expand(32, 32) * 2 - 1
    top = left.T
    patterns = torch.stack([torch.stack([left, -left, torch.zeros(32, 32)]), torch.stack([-top, -top, top])])
    start = smooth_images(2, 3, 32, seed=3)
    best = maximise(PlantedFilters(patterns), "conv", [0, 1], start, RANGE, parameterisation="fourier")
    for i in (0, 1):  # the first pattern leaves blue free: compare the red and green planes
        assert correlation(start[i, :2], patterns[i, :2]) < 0.3
        assert correlation(best[i, :2], patterns[i, :2]) > 0.9, i
        assert abs(correlation(best[i, :2], patterns[1 - i, :2])) < 0.2, i


def test_fourier_ascent_is_the_same_for_a_seed_and_differs_between_seeds():
    net, start = rgb_net(), smooth_images(2, 3, 32, seed=4)
    runs = [maximise(net, "block1", [0, 1], start, RANGE, steps=4, seed=s, parameterisation="fourier")
            for s in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


# ---- choosing the parameterisation ---------------------------------------------------------------------------

def test_auto_is_pixels_on_grey_and_fourier_on_rgb_and_the_caption_says_which():
    torch.manual_seed(10)
    grey_net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=16, depth=2, width=4).eval()
    grey_probe = smooth_images(4, 1, 16, seed=11)
    picture, results = maximisation_picture(grey_net, grey_probe, channels_per_stage=2, steps=6)
    outputs = {name: channel_means(run_to(grey_net, name, grey_probe)) for name in results}
    for stage, (channels, best) in results.items():  # exactly the pixel ascent from each favourite image
        favourite = outputs[stage][:, channels].argmax(dim=0)
        assert torch.equal(best, maximise(grey_net, stage, channels, grey_probe[favourite],
                                          (float(grey_probe.min()), float(grey_probe.max())), steps=6,
                                          parameterisation="pixel"))
    assert "pixel-space" in picture.caption and "Fourier" not in picture.caption

    net, probe = rgb_net(), smooth_images(4, 3, 32, seed=12)
    picture, auto = maximisation_picture(net, probe, channels_per_stage=2, steps=6)
    _, fourier = maximisation_picture(net, probe, channels_per_stage=2, steps=6, parameterisation="fourier")
    _, pixel = maximisation_picture(net, probe, channels_per_stage=2, steps=6, parameterisation="pixel")
    assert all(torch.equal(auto[s][1], fourier[s][1]) and not torch.equal(auto[s][1], pixel[s][1]) for s in auto)
    assert "Fourier-parameterised" in picture.caption and "pixel-space" not in picture.caption


def test_maximising_leaves_training_alone():
    """No parameter gets a .grad or changes, and torch's global random state is where it was."""
    net, probe = rgb_net(), smooth_images(4, 3, 32, seed=13)
    net.train()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    maximisation_picture(net, probe, channels_per_stage=2, steps=6)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(v, weights[k]) for k, v in net.state_dict().items())


def test_an_unknown_parameterisation_is_refused_by_name():
    net, probe = rgb_net(), smooth_images(2, 3, 32, seed=14)
    with pytest.raises(ValueError, match=r"parameterisation must be auto, pixel, fourier, got 'fft'"):
        maximisation_picture(net, probe, parameterisation="fft")
    with pytest.raises(ValueError, match=r"parameterisation must be one of pixel, fourier, got 'auto'"):
        maximise(net, "block1", [0], probe[:1], RANGE, parameterisation="auto")

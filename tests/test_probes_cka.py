"""CKA against known answers: 1 for a representation with itself, the invariances the paper proves
(orthogonal maps, isotropic scaling) and the one it does not have (general linear maps), about d/n for
independent features, 0.0 rather than NaN for a dead stage; then the stage matrix, numbers and picture
on a real model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.probes.cka import cka_matrix, cka_numbers, cka_picture, linear_cka, rbf_cka
from cnnlab.probes.features import stage_features

KINDS = {"linear": linear_cka, "rbf": rbf_cka}


def features(n: int = 300, d: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def orthogonal(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


@pytest.fixture(scope="module")
def stage_feats() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=28, depth=3, width=8).eval()
    x = torch.randn(200, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return stage_features(net, x)


@pytest.mark.parametrize("kind", KINDS)
def test_identical_representations_give_one(kind):
    x = features()
    assert KINDS[kind](x, x) == pytest.approx(1.0, abs=1e-6)
    images = x.reshape(300, 5, 2, 2)  # trailing dims are flattened
    assert KINDS[kind](images, x) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(kind):
    x = features()
    assert KINDS[kind](x, x @ orthogonal(20, seed=1)) == pytest.approx(1.0, abs=1e-6)
    assert KINDS[kind](x, 7.3 * x) == pytest.approx(1.0, abs=1e-6)
    assert KINDS[kind](x @ orthogonal(20, seed=2), 7.3 * x) == pytest.approx(1.0, abs=1e-6)


def test_not_invariant_to_a_general_invertible_map():
    """Stretching some directions 100× more than others re-weights them: CKA must notice (≈0.44 here)."""
    x = features()
    a = orthogonal(20, seed=3) @ torch.diag(torch.logspace(0, 2, 20)) @ orthogonal(20, seed=4)
    assert torch.linalg.matrix_rank(a) == 20
    assert linear_cka(x, x @ a) < 0.7
    assert rbf_cka(x, x @ a) < 0.7


def test_independent_features_are_near_zero():
    """For independent features linear CKA is about d/n = 0.005 (measured 0.0049), RBF about 0.011."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2000, 10, generator=g), torch.randn(2000, 10, generator=g)
    assert linear_cka(x, y) < 0.01
    assert rbf_cka(x, y) < 0.02


@pytest.mark.parametrize("kind", KINDS)
def test_symmetric(kind):
    x, y = features(seed=0), features(d=7, seed=1)
    y = y + x[:, :7]  # related, so the value is not trivially near zero
    assert KINDS[kind](x, y) == pytest.approx(KINDS[kind](y, x), abs=1e-12)
    assert 0.1 < KINDS[kind](x, y) < 0.99


@pytest.mark.parametrize("kind", KINDS)
def test_dead_stage_gives_zero_not_nan(kind):
    x = features()
    assert KINDS[kind](x, torch.full((300, 5), 3.7)) == 0.0
    assert KINDS[kind](torch.zeros(300, 4), x) == 0.0


def test_rbf_with_mostly_identical_images_is_finite():
    """A mostly silent ReLU: the median distance is 0, so σ comes from the non-zero distances."""
    x = features()
    x[:200] = 0
    assert rbf_cka(x, x) == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(rbf_cka(x, features(seed=5)))


def test_mismatched_image_counts_are_refused(stage_feats):
    with pytest.raises(CnnlabError, match=r"300 images and the second 200"):
        linear_cka(features(), features(n=200))
    fewer = {name: f[:150] for name, f in stage_feats.items()}
    with pytest.raises(CnnlabError) as info:
        cka_matrix(stage_feats, fewer)
    assert "200" in str(info.value) and "150" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_matrix_of_a_real_model(stage_feats, kind):
    names_a, names_b, matrix = cka_matrix(stage_feats, stage_feats, kind)
    assert names_a is names_b and names_a == list(stage_feats)
    assert matrix.shape == (len(stage_feats), len(stage_feats))
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    assert np.all((matrix > 0) & (matrix < 1 + 1e-9))
    # between two dicts (two models): the same values, each computed from its own Grams
    names_c, names_d, between = cka_matrix(stage_feats, dict(stage_feats), kind)
    assert names_c is not names_d
    np.testing.assert_allclose(between, matrix, atol=1e-9)


def test_matrix_with_a_dead_stage(stage_feats):
    feats = {**stage_feats, "dead": torch.zeros(200, 12)}
    _, _, matrix = cka_matrix(feats, feats)
    assert not np.isnan(matrix).any()
    assert np.all(matrix[-1] == 0) and np.all(matrix[:, -1] == 0)


def test_numbers_within_and_between(stage_feats):
    names, same, matrix = cka_matrix(stage_feats, stage_feats)
    within = cka_numbers(names, same, matrix, "linear")
    s = len(names)
    assert len(within) == s * (s - 1) // 2
    assert within[f"cka/linear/{names[0]}~{names[1]}"] == matrix[0, 1]
    assert f"cka/linear/{names[1]}~{names[0]}" not in within
    between = cka_numbers(list(names), list(names), matrix, "rbf", prefix="cka_vs_seed1")
    assert len(between) == s * s
    assert between[f"cka_vs_seed1/rbf/{names[1]}~{names[0]}"] == matrix[1, 0]
    assert all(isinstance(v, float) for v in between.values())


@pytest.mark.parametrize("kind", KINDS)
def test_picture(stage_feats, kind):
    names, same, matrix = cka_matrix(stage_feats, stage_feats, kind)
    picture = cka_picture(names, same, matrix, kind, key=f"cka/{kind}")
    assert picture.key == f"cka/{kind}"
    assert picture.image.dtype == np.uint8 and picture.image.ndim == 3 and picture.image.shape[2] == 3
    assert kind in picture.caption.lower()
    assert f"{len(names)} stages of one model" in picture.caption and "adjacent" in picture.caption
    between = cka_picture(names, list(names), matrix, kind, key="cka/vs", title_a="seed 0", title_b="seed 1")
    assert "seed 0" in between.caption and "seed 1" in between.caption and "adjacent" not in between.caption


def test_saved_grams_match_stages_across_runs(tmp_path):
    """Kornblith et al.'s correspondence test from saved Gram matrices: a net's stages against a rotated and
    rescaled copy of themselves match one to one; against a copy whose stages are swapped they do not."""
    from cnnlab.probes.cka import correspondence, load_grams, save_grams

    torch.manual_seed(0)
    feats = {f"block{i}": torch.randn(60, 8 + i) @ torch.randn(8 + i, 20) for i in range(1, 4)}
    turn, _ = torch.linalg.qr(torch.randn(20, 20))
    same = {name: 3.0 * x @ turn for name, x in feats.items()}  # CKA is blind to rotation and scale
    swapped = {"block1": feats["block3"], "block2": feats["block2"], "block3": feats["block1"]}
    for name, features in (("a", feats), ("b", same), ("c", swapped)):
        save_grams(features, tmp_path / name / "cka_grams.pt")
    a, b, c = (load_grams(tmp_path / name / "cka_grams.pt") for name in "abc")
    assert a["block1"].centred.shape == (60, 60)
    assert correspondence(a, b) == 1.0
    assert correspondence(a, c) == pytest.approx(1 / 3)  # only block2 finds itself
    with pytest.raises(CnnlabError, match="stages of the same names"):
        correspondence(a, {"other": a["block1"]})

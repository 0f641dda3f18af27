"""Closed-form oracles for the numbers after the raw computation (issue #14).

Each test names the one-line bug it would catch.
"""

import keras
import numpy as np
import pytest

from xaikit import regions, similarity
from xaikit.ig import integrated_gradients, integrated_gradients_adaptive, quadrature

from .conftest import chest_like


@pytest.mark.parametrize("method,steps,exact_degree", [
    ("riemann_left", 5, 0), ("trapezoid", 4, 1), ("gauss_legendre", 3, 5), ("gauss_legendre", 1, 1)])
def test_quadrature_is_exact_up_to_its_degree(method, steps, exact_degree):
    """Catches: nodes shifted (e.g. a midpoint rule labelled left), end weights not halved,
    Gauss-Legendre nodes not mapped from [-1, 1] to [0, 1]."""
    a, w = quadrature(steps, method)
    for d in range(exact_degree + 1):
        assert float(np.sum(w * a.astype(np.float64) ** d)) == pytest.approx(1 / (d + 1), abs=1e-6)
    d = exact_degree + 1                      # one degree more is no longer exact
    assert float(np.sum(w * a.astype(np.float64) ** d)) != pytest.approx(1 / (d + 1), abs=1e-6)


def test_quadrature_nodes():
    """Catches: a trapezoid grid without its end-point, or a left rule that includes 1."""
    np.testing.assert_allclose(quadrature(4, "trapezoid")[0], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(quadrature(4, "riemann_left")[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(quadrature(4, "trapezoid")[1], [0.125, 0.25, 0.25, 0.25, 0.125])


def square_model(shape):
    """Outputs [sum(x^2), -sum(x^2)]."""
    inp = keras.Input(shape)
    s = keras.layers.Lambda(lambda t: keras.ops.sum(keras.ops.square(t), axis=(1, 2, 3), keepdims=False)[:, None])(inp)
    return keras.Model(inp, keras.layers.Concatenate()([s, -s]))


@pytest.mark.parametrize("method,steps,factor", [("trapezoid", 3, 1.0), ("gauss_legendre", 2, 1.0),
                                                  ("riemann_left", 4, 0.75)])
def test_ig_of_sum_of_squares_from_zero_is_x_squared(method, steps, factor):
    """IG of sum(x^2) from 0 is x^2 (the integrand 2 alpha x^2 is linear in alpha: exact for the
    trapezoid and Gauss rules; the left rule gives x^2 (1 - 1/steps)). Catches: the (x - b)
    factor dropped or squared, weights not applied per step, a path from x to b."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(2, 3, 4, 1)).astype(np.float32)
    res = integrated_gradients(square_model((3, 4, 1)), x, np.zeros((3, 4, 1), np.float32), 0,
                               steps=steps, method=method)
    np.testing.assert_allclose(res.attributions, factor * x ** 2, rtol=1e-4, atol=1e-6)
    res1 = integrated_gradients(square_model((3, 4, 1)), x, np.zeros((3, 4, 1), np.float32), 1,
                                steps=steps, method=method)
    np.testing.assert_allclose(res1.attributions, -factor * x ** 2, rtol=1e-4, atol=1e-6)


def test_adaptive_ig_reports_the_gap_of_what_it_returns():
    """Catches: adaptive IG returning refined attributions with the coarse run's gap (or the
    reverse), and the step count not being the largest used."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(3, 3, activation="tanh", padding="same")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 3, size=(4, 8, 8, 1)).astype(np.float32)
    b = np.zeros((8, 8, 1), np.float32)
    res = integrated_gradients_adaptive(model, x, b, 0, steps=2, tolerance=1e-3, max_steps=32)
    delta = res.f_image - res.f_baseline
    gap = np.abs(res.attributions.reshape(4, -1).sum(1) - delta) / np.abs(delta)
    np.testing.assert_allclose(res.gap, gap, atol=2e-5)      # float32 sums; coarse gaps exceed 1e-3
    assert res.steps in (4, 8, 16, 32)          # doubled from 2, never beyond max_steps


def test_signed_map_splits_its_absolute_mass():
    """+1 on the lungs and -1 on the border: each holds half of the absolute mass. Catches:
    shares of the signed map (which would give 1 and -1, or 0 in total)."""
    border = regions.border_zone((20, 20), 0.1)
    lungs = np.zeros((20, 20), bool)
    lungs[5:15, 3:8] = lungs[5:15, 12:17] = True
    m2 = np.where(lungs, 1.0 / lungs.sum(), 0.0) - np.where(border, 1.0 / border.sum(), 0.0)
    assert regions.image_shares(m2[None], lungs)[0] == pytest.approx(0.5)
    assert regions.image_shares(m2[None], border)[0] == pytest.approx(0.5)


def test_ssim_and_spearman_invariances():
    """Catches: SSIM on unnormalised maps (not invariant to an affine change), a Spearman that
    takes |.| in the signed variant."""
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(32, 32))
    assert similarity.ssim(a, 3.0 * a + 2.0) == pytest.approx(1.0)
    assert similarity.ssim(a, rng.uniform(size=(32, 32))) < 0.3
    assert similarity.spearman(a, -a) == pytest.approx(-1.0)
    assert similarity.measure_pair(a - 0.5, 0.5 - a, "spearman_abs") == pytest.approx(1.0)


def test_ssim_measure_pins_its_data_range_and_hog_guards_flat_maps():
    """Catches: SSIM constants computed for another data range, a HOG correlation of a flat map
    returning NaN instead of 0."""
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(32, 32)), rng.normal(size=(32, 32))
    na, nb = similarity.adebayo_normalize(a), similarity.adebayo_normalize(b)
    expected = structural_similarity(na, nb, data_range=1.0)
    assert similarity.measure_pair(a, b, "ssim") == pytest.approx(expected)
    assert expected != pytest.approx(structural_similarity(na, nb, data_range=2.0))
    assert similarity.hog_pearson(np.zeros((32, 32)), a) == 0.0
    assert similarity.hog_pearson(a, np.zeros((32, 32))) == 0.0


def test_consistency_averages_pairs_by_hand():
    """Three maps per class with known pairwise correlations. Catches: the diagonal counted as a
    pair, the across mean taken over within pairs, classes swapped."""
    base = np.arange(16, dtype=float).reshape(4, 4)
    maps = np.stack([base, base, base, -base, -base, -base])     # rank corr: +1 within, -1 across
    c = similarity.consistency(maps, np.array([0, 0, 0, 1, 1, 1]))
    assert (c.within_a, c.within_b, c.across) == pytest.approx((1.0, 1.0, -1.0))
    maps2 = np.stack([base, -base, base, base, base, base])      # class 0: pairs +-1: mean -1/3
    c2 = similarity.consistency(maps2, np.array([0, 0, 0, 1, 1, 1]))
    assert c2.within_a == pytest.approx(-1 / 3) and c2.within_b == pytest.approx(1.0)
    assert c2.across == pytest.approx(1 / 3)


def test_segmentation_follows_lungs_away_from_the_prior():
    """A synthetic chest whose lungs sit low and wide, away from the prior's ellipses: the mask
    must follow them (not fall back). Catches: a segmentation that always returns the prior."""
    size = 128
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.75 - 0.2 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    lungs = np.zeros((size, size), bool)
    for cx in (0.2, 0.8):
        lungs |= ((xx - cx) / 0.09) ** 2 + ((yy - 0.68) / 0.16) ** 2 <= 1
    img[lungs] = 0.2
    img += np.random.default_rng(0).normal(0, 0.03, img.shape)
    seg = regions.segment_lungs(np.clip(img, 0, 1))
    prior = regions.segment_lungs(np.zeros((size, size))).mask
    assert not seg.fallback
    assert regions.dice(seg.mask, lungs) > 0.85
    assert regions.dice(seg.mask, lungs) > regions.dice(prior, lungs) + 0.3


def test_segmentation_ignores_dark_air_at_the_top_of_the_body_band():
    """Dark air that reaches the top edge of the body band (above the shoulders) is not a lung,
    even when it is the largest dark region. Catches: a band-edge test that lets a region
    starting on the band's first row through."""
    size = 100
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.full((size, size), 0.75)
    lungs = np.zeros((size, size), bool)
    for cx in (0.3, 0.7):
        lungs |= ((xx - cx) / 0.12) ** 2 + ((yy - 0.55) / 0.22) ** 2 <= 1
    img[lungs] = 0.2
    air = (yy >= 0.08) & (yy < 0.25) & (xx > 0.1) & (xx < 0.9)      # starts on the band's first row
    img[air] = 0.15
    seg = regions.segment_lungs(img)
    assert not seg.fallback
    assert seg.mask[air].mean() < 0.05 and regions.dice(seg.mask, lungs) > 0.85


def test_dice_of_two_empty_masks_is_one():
    """Catches: 0/0 (NaN) when neither mask has a pixel."""
    assert regions.dice(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0

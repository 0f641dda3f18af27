"""Q5's statistics and map measures: the verdict rule, flat maps, normalisation, cascading
randomization. Each test names the bug it would catch."""

import keras
import numpy as np
import pytest

from xaikit import randomization, sanity, similarity
from xaikit.model import build_cnn


def _arms(rng, *, random_like_control: bool, k=3, n=24, size=16):
    """Control maps share one structure per image (+ seed noise); random maps are independent
    noise, or exact copies of the controls."""
    structure = rng.normal(size=(n, size, size))
    controls = [structure + 0.5 * rng.normal(size=structure.shape) for _ in range(k)]
    randoms = ([c.copy() for c in controls] if random_like_control
               else [rng.normal(size=structure.shape) for _ in range(k)])
    return controls, randoms


def _test(controls, randoms, metric, margin=0.1, n_boot=300):
    k, n = len(controls), len(controls[0])
    cross = np.stack([np.stack([similarity.measure_stack(c, r, metric) for c in controls]) for r in randoms])
    ceiling = np.full((k, k, n), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            ceiling[i, j] = ceiling[j, i] = similarity.measure_stack(controls[i], controls[j], metric)
    partner = (np.arange(n) + 1) % n
    floor = np.stack([similarity.measure_stack(c, c[partner], metric) for c in controls])
    return sanity.randomization_test(cross, ceiling, floor, margin=margin, n_boot=n_boot, seed=0)


@pytest.mark.parametrize("metric", similarity.MEASURES)
def test_verdict_flips_when_random_maps_equal_the_controls(metric):
    # catches: a rule comparing the wrong pair (e.g. ceiling - cross), or ignoring the interval
    rng = np.random.default_rng(0)
    controls, randoms = _arms(rng, random_like_control=False)
    assert _test(controls, randoms, metric).passed
    controls, randoms = _arms(np.random.default_rng(0), random_like_control=True)
    same = _test(controls, randoms, metric)
    assert not same.passed and not same.below_ceiling and not same.near_floor


def test_equivalence_margin_decides_near_floor():
    # catches: the margin being ignored or compared with the lower instead of the upper bound
    rng = np.random.default_rng(1)
    controls, randoms = _arms(rng, random_like_control=False)
    r = _test(controls, randoms, "spearman_abs", margin=0.1)
    assert r.near_floor and r.excess.hi < 0.1
    tight = _test(controls, randoms, "spearman_abs", margin=r.excess.hi - 1e-9)
    assert not tight.near_floor and not tight.passed


def test_flat_maps_are_counted_and_excluded():
    # catches: a flat (dead) map scored as similarity 0 instead of being left out
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 8, 8)), rng.normal(size=(5, 8, 8))
    b[3] = 0.0
    assert similarity.is_flat(b).tolist() == [False, False, False, True, False]
    v = similarity.measure_stack(a, b, "spearman_abs")
    assert np.isnan(v[3]) and not np.isnan(np.delete(v, 3)).any()
    iv = sanity.bootstrap_mean(v[None], n_boot=200)
    assert iv.mean == pytest.approx(np.mean(np.delete(v, 3)))


def test_randomization_test_point_estimates_are_the_plain_means():
    # catches: a ceiling that includes the diagonal (a control with itself) or a wrong axis
    rng = np.random.default_rng(3)
    cross = rng.uniform(size=(2, 3, 6))
    ceiling = rng.uniform(size=(3, 3, 6))
    ceiling[[0, 1, 2], [0, 1, 2]] = 1.0          # the diagonal must be ignored
    floor = rng.uniform(size=(3, 6))
    r = sanity.randomization_test(cross, ceiling, floor, margin=0.1, n_boot=100)
    off = ~np.eye(3, dtype=bool)
    assert r.cross.mean == pytest.approx(cross.mean())
    assert r.ceiling.mean == pytest.approx(ceiling[off].mean())
    assert r.diff.mean == pytest.approx(cross.mean() - ceiling[off].mean())
    assert r.floor.mean == pytest.approx(floor.mean())
    assert r.cross.lo <= r.cross.mean <= r.cross.hi
    with pytest.raises(ValueError, match="control seeds"):
        sanity.randomization_test(cross[:, :1], ceiling[:1, :1], floor[:1], margin=0.1)


def test_measures_closed_forms():
    # catches: abs and signed variants swapped, or SSIM/HOG fed unnormalised maps
    rng = np.random.default_rng(4)
    a = rng.normal(size=(16, 16))
    assert similarity.measure_pair(a, -a, "spearman_signed") == pytest.approx(-1.0)
    assert similarity.measure_pair(a, -a, "spearman_abs") == pytest.approx(1.0)
    # Adebayo normalisation takes |.|, so SSIM and HOG of a and -a are perfect
    assert similarity.measure_pair(a, -a, "ssim") == pytest.approx(1.0)
    assert similarity.measure_pair(a, -a, "hog") == pytest.approx(1.0)
    # and they are invariant to a positive scale of the map
    assert similarity.measure_pair(a, 7.0 * a, "ssim") == pytest.approx(1.0)
    m = np.arange(100, dtype=float).reshape(10, 10) - 50
    n = similarity.adebayo_normalize(m)
    assert n.max() == 1.0 and n.min() == 0.0
    top = np.percentile(np.abs(m), 99)
    assert n[0, 0] == pytest.approx(1.0) and n[5, 0] == 0.0
    assert n[5, 4] == pytest.approx(4 / top)
    with pytest.raises(ValueError, match="measure expects"):
        similarity.measure_pair(a, a, "pearson")


@pytest.mark.parametrize("order,first", [("top_down", "logits"), ("bottom_up", "stem_conv")])
def test_cascade_randomizes_one_more_layer_each_step(order, first):
    # catches: wrong order, a step that re-initialises every layer at once, or the caller's model changed
    model = build_cnn(32, 1, seed=0)
    before = [w.copy() for w in model.get_weights()]
    steps = randomization.cascade(model, order, seed=1)
    names = randomization.weighted_layers(model)
    assert len(steps) == len(names) and steps[0].randomized == (first,)
    for k, step in enumerate(steps, start=1):
        for name in names:
            changed = not np.allclose(step.model.get_layer(name).get_weights()[0],
                                      model.get_layer(name).get_weights()[0])
            assert changed == (name in step.randomized[:k]), (order, k, name)
    for w, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w, b)
    with pytest.raises(ValueError, match="order expects"):
        randomization.cascade(model, "sideways", seed=0)


def test_bootstrap_mean_interval_matches_the_normal_theory():
    """400 draws of N(0, 1): the 95% interval of the mean is about mean +- 1.96 / 20, symmetric.
    Catches: other percentiles than 2.5 / 97.5, or resampling that ignores the images."""
    v = np.random.default_rng(11).normal(size=400)
    iv = sanity.bootstrap_mean(v, n_boot=20000, seed=3)
    half = 1.96 * v.std() / 20
    assert iv.hi - iv.mean == pytest.approx(half, rel=0.06)
    assert iv.mean - iv.lo == pytest.approx(half, rel=0.06)

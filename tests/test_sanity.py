"""Q5's statistics and map measures: the verdict rule, flat maps, normalisation, cascading
randomization. Each test names the bug it would catch."""

import keras
import numpy as np
import pytest

from xaikit import randomization, sanity, similarity
from xaikit.model import build_cnn


def _arms(rng, *, random_like_control: bool, k=5, n=24, size=16):
    """Control maps share one structure per image (+ seed noise); random maps are independent
    noise, or exact copies of the controls."""
    structure = rng.normal(size=(n, size, size))
    controls = [structure + 0.5 * rng.normal(size=structure.shape) for _ in range(k)]
    randoms = ([c.copy() for c in controls] if random_like_control
               else [rng.normal(size=structure.shape) for _ in range(k)])
    return controls, randoms


def _test(controls, randoms, metric, cut=0.5, n_boot=300):
    n = len(controls[0])
    labels = np.arange(n) % 2
    partners = sanity.matched_partners(labels, labels, len(controls), seed=0)
    arm = sanity.matched_partners(labels, labels, len(controls), seed=1, n_other=len(randoms))
    cross, ceiling, floor, floor_arm = sanity.arm_similarities(
        controls, randoms, lambda a, b: similarity.measure_stack(a, b, metric), partners, exclude_same_index=True,
        partners_arm=arm)
    return sanity.randomization_test(cross, ceiling, floor, floor_arm=floor_arm, cut=cut, n_boot=n_boot, seed=0)


@pytest.mark.parametrize("metric", similarity.MEASURES)
def test_verdict_flips_when_random_maps_equal_the_controls(metric):
    # catches: a rule comparing the wrong pair (e.g. ceiling - cross), or ignoring the interval
    controls, randoms = _arms(np.random.default_rng(0), random_like_control=False)
    assert _test(controls, randoms, metric).outcome == "pass"
    controls, randoms = _arms(np.random.default_rng(0), random_like_control=True)
    same = _test(controls, randoms, metric)
    assert same.outcome == "fail" and same.rho.mean == pytest.approx(1.0)


def _constant(c=3, r=3, n=8, *, cross, ceiling, floor, rng=None):
    rng = rng or np.random.default_rng(0)
    jitter = lambda shape: 0.01 * rng.normal(size=shape)  # noqa: E731
    return (cross + jitter((c, r, n)), ceiling + jitter((c, c, n)), floor + jitter((c, c, n)))


def test_rho_is_zero_at_the_floor_and_one_at_the_ceiling():
    # catches: rho normalised by the wrong span (e.g. ceiling alone) or with cross and floor swapped
    at_floor = sanity.randomization_test(*_constant(cross=0.2, ceiling=0.8, floor=0.2), cut=0.5, n_boot=200)
    assert at_floor.rho.mean == pytest.approx(0.0, abs=0.03) and at_floor.outcome == "pass"
    at_ceiling = sanity.randomization_test(*_constant(cross=0.8, ceiling=0.8, floor=0.2), cut=0.5, n_boot=200)
    assert at_ceiling.rho.mean == pytest.approx(1.0, abs=0.03) and at_ceiling.outcome == "fail"
    half = sanity.randomization_test(*_constant(cross=0.5, ceiling=0.8, floor=0.2), cut=0.5, n_boot=200)
    assert half.rho.mean == pytest.approx(0.5, abs=0.03) and half.outcome == "inconclusive"
    # exact on noise-free arrays: (0.35 - 0.2) / (0.8 - 0.2) = 0.25
    exact = sanity.randomization_test(np.full((2, 2, 4), 0.35), np.full((2, 2, 4), 0.8),
                                      np.full((2, 2, 4), 0.2), cut=0.5, n_boot=100)
    assert exact.rho.mean == pytest.approx(0.25) and exact.rho.lo == pytest.approx(0.25)
    assert exact.pass_cuts == pytest.approx((0.25, 1.0)) and exact.fail_cuts == pytest.approx((0.0, 0.25))
    assert exact.models_resampled       # the replicated design resamples models by default
    # beyond the ceiling: the printed cut ends stay inside [0, 1]
    above = sanity.randomization_test(*_constant(cross=0.9, ceiling=0.5, floor=0.2), cut=0.5, n_boot=200).as_dict()
    assert above["pass_above"] == 1.0 and above["fail_below"] == 1.0 and above["fails_everywhere"]


def test_ceiling_equal_to_floor_is_uninformative():
    # catches: a missing validity gate (a metric that cannot tell its references apart still "passes")
    r = sanity.randomization_test(*_constant(cross=0.1, ceiling=0.3, floor=0.3), cut=0.5, n_boot=200)
    assert r.outcome == "uninformative" and r.gap.lo <= 0 <= r.gap.hi
    assert r.pass_cuts is None and r.fail_cuts is None
    assert set(sanity.cut_sweep(r.gap, r.rho, np.linspace(0, 1, 11))) == {"uninformative"}
    below = sanity.randomization_test(*_constant(cross=0.1, ceiling=0.2, floor=0.3), cut=0.5, n_boot=200)
    assert below.outcome == "uninformative"          # a ceiling under its floor is no better


def test_outcome_and_cut_sweep_follow_the_interval():
    # catches: pass / fail decided by the point estimate, or the cut compared with the wrong bound
    gap = sanity.Interval(0.3, 0.2, 0.4)
    rho = sanity.Interval(0.35, 0.3, 0.4)
    assert sanity.outcome(gap, rho, 0.5) == "pass"
    assert sanity.outcome(gap, rho, 0.2) == "fail"
    assert sanity.outcome(gap, rho, 0.35) == "inconclusive"
    assert sanity.outcome(sanity.Interval(0.3, 0.0, 0.4), rho, 0.5) == "uninformative"
    sweep = sanity.cut_sweep(gap, rho, np.array([0.1, 0.3, 0.35, 0.41, 0.9]))
    assert sweep == ["fail", "inconclusive", "inconclusive", "pass", "pass"]


def test_matched_floor_pairs_same_class_and_target_of_two_models():
    # catches: partners drawn across classes or targets, an image paired with itself, or the
    # floor measured within one model
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    targets = np.array([0, 1, 0, 1, 1, 0, 1, 1])
    partners = sanity.matched_partners(labels, targets, 3, seed=4)
    for i in range(3):
        assert (partners[i, i] == -1).all()
        for k in range(3):
            if i == k:
                continue
            for a, b in enumerate(partners[i, k]):
                group = np.flatnonzero((labels == labels[a]) & (targets == targets[a]))
                if len(group) < 2:
                    assert b == -1
                else:
                    assert b != a and labels[b] == labels[a] and targets[b] == targets[a]
    # floor[i, k, a] compares model i on image a with model k (k != i) on its partner
    maps = [np.stack([np.full((4, 4), 10 * m + img) + np.eye(4) for img in range(8)]) for m in range(3)]
    seen = []
    def measure(a, b):
        seen.append((a[:, 0, 1] // 10, b[:, 0, 1] // 10, a[:, 0, 1] % 10, b[:, 0, 1] % 10))
        return np.zeros(len(a))
    _, _, floor, _ = sanity.arm_similarities(maps, maps[:1], measure, partners, exclude_same_index=False)
    pairs = [s for s in seen if len(s[0]) and len(s[0]) < 8]
    assert pairs and all((ma != mb).all() for ma, mb, _, _ in pairs)
    assert all((labels[ia.astype(int)] == labels[ib.astype(int)]).all() and (ia != ib).all()
               for _, _, ia, ib in pairs)
    assert np.isnan(floor[0, 0]).all() and np.isnan(floor[1, 2, [5]]).all()   # image 5 has no partner
    assert not np.isnan(floor[1, 2, [0, 1, 2, 3, 4, 6, 7]]).any()


def test_the_floor_matched_in_arm_takes_the_cross_pairs_and_a_matched_image():
    # catches: floor_arm measured between two true-label models (the old floor, #32), on the same image, on a
    # partner of another class or target, or for pairs the cross leaves out
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    targets = np.array([0, 1, 0, 1, 1, 0, 1, 1])
    arm = sanity.matched_partners(labels, targets, 3, seed=2, n_other=2)
    assert arm.shape == (3, 2, 8) and (arm[1, 1] >= 0).any()               # the diagonal has partners too
    controls = [np.stack([np.full((4, 4), 10 * m + img) + np.eye(4) for img in range(8)]) for m in range(3)]
    randoms = [np.stack([np.full((4, 4), 100 + 10 * m + img) + np.eye(4) for img in range(8)]) for m in range(2)]
    seen = []

    def measure(a, b):
        seen.append((a[:, 0, 1] // 10, b[:, 0, 1] // 10, a[:, 0, 1] % 10, b[:, 0, 1] % 10))
        return np.zeros(len(a))
    partners = sanity.matched_partners(labels, targets, 3, seed=4)
    cross, _, _, floor_arm = sanity.arm_similarities(controls, randoms, measure, partners, exclude_same_index=True,
                                                     partners_arm=arm)
    np.testing.assert_array_equal(np.isnan(cross).all(axis=2), np.isnan(floor_arm).all(axis=2))   # the cross's pairs
    mixed = [s for s in seen if len(s[1]) and (s[1] >= 10).all() and len(s[0]) < 8]              # control vs random, partners
    assert mixed and all((ia != ib).all() and (labels[ia.astype(int)] == labels[ib.astype(int)]).all()
                         and (targets[ia.astype(int)] == targets[ib.astype(int)]).all() for _, _, ia, ib in mixed)
    assert np.isnan(floor_arm[0, 0]).all() and np.isnan(floor_arm[1, 0, [5]]).all()   # i == j left out; no partner


def test_a_class_template_gives_rho_near_zero_and_the_gate_needs_its_effect():
    # catches: rho above 1 or far below 0 when the random-label maps are an image-free template (the old floor
    # compared two true-label models on different images, so rho scaled with 1 / (ceiling - floor), #32), or a
    # gate that passes a metric two true-label models barely reproduce
    rng = np.random.default_rng(3)
    n, size, k = 16, 12, 3
    template = rng.normal(size=(size, size))
    images = rng.normal(size=(n, size, size))
    controls = [template + images + 0.5 * rng.normal(size=images.shape) for _ in range(k)]
    randoms = [np.broadcast_to(template + 0.5 * rng.normal(size=(size, size)), images.shape).copy() for _ in range(k)]
    r = _test(controls, randoms, "spearman_signed")
    assert -0.1 < r.rho.mean < 0.1 and r.outcome == "pass"
    assert r.floor_arm.mean == pytest.approx(r.cross.mean, abs=0.05) and r.floor_arm.mean > r.floor.mean - 0.3
    faint = [template + 0.3 * images + rng.normal(size=images.shape) for _ in range(k)]   # barely reproducible
    labels = np.arange(n) % 2
    arrays = sanity.arm_similarities(faint, randoms, lambda a, b: similarity.measure_stack(a, b, "spearman_signed"),
                                     sanity.matched_partners(labels, labels, k, seed=0), exclude_same_index=True,
                                     partners_arm=sanity.matched_partners(labels, labels, k, seed=1, n_other=k))
    loose = sanity.randomization_test(*arrays[:3], floor_arm=arrays[3], cut=0.5, n_boot=300, effect=0.0)
    strict = sanity.randomization_test(*arrays[:3], floor_arm=arrays[3], cut=0.5, n_boot=300, effect=0.1)
    assert loose.gap.lo > 0 and loose.gap.lo < 0.1 and loose.outcome != "uninformative"
    assert strict.outcome == "uninformative" and strict.effect == 0.1
    assert sanity.outcome(sanity.Interval(0.3, 0.05, 0.4), sanity.Interval(0.1, 0.0, 0.2), 0.5, 0.1) == "uninformative"
    with pytest.raises(ValueError, match="effect expects"):
        sanity.randomization_test(*arrays[:3], cut=0.5, n_boot=300, effect=-0.1)


def test_cross_leaves_out_pairs_that_share_a_subset():
    # catches: random-i compared with control-i (same training subset) while the ceiling never is
    maps = [np.random.default_rng(i).normal(size=(4, 6, 6)) for i in range(3)]
    partners = sanity.matched_partners(np.zeros(4, int), np.zeros(4, int), 3, seed=0)
    m = lambda a, b: similarity.measure_stack(a, b, "spearman_signed")  # noqa: E731
    cross, ceiling, _, _ = sanity.arm_similarities(maps, maps, m, partners, exclude_same_index=True)
    assert np.isnan(cross[[0, 1, 2], [0, 1, 2]]).all() and not np.isnan(cross[0, 1]).any()
    np.testing.assert_allclose(cross[0, 1], ceiling[0, 1])
    kept, _, _, _ = sanity.arm_similarities(maps, maps, m, partners, exclude_same_index=False)
    np.testing.assert_allclose(kept[1, 1], 1.0)


def test_no_resample_is_dropped_or_degenerate():
    # catches: resamples silently dropped (NaN) or a resample that draws one model only, so the
    # ceiling has no pair: every resample must yield a finite statistic
    rng = np.random.default_rng(5)
    cross, ceiling, floor = rng.uniform(size=(2, 1, 3)), rng.uniform(0.5, 1, size=(2, 2, 3)), rng.uniform(0, 0.4, size=(2, 2, 3))
    r = sanity.randomization_test(cross, ceiling, floor, cut=0.5, n_boot=500, seed=1)
    assert r.n_boot == 500 and np.isfinite([r.rho.lo, r.rho.hi, r.gap.lo, r.ceiling.lo]).all()
    w = np.random.default_rng(0).dirichlet(np.ones(2), size=500)
    assert (w > 0).all()                               # why none is degenerate
    ceiling[:, :, :] = np.nan       # no valid pair at all (every map flat): no verdict, never an exception
    flat = sanity.randomization_test(cross, ceiling, floor, cut=0.5, n_boot=100)
    assert flat.outcome == "uninformative" and np.isnan(flat.rho.mean)
    assert np.isnan(sanity.bootstrap_mean(np.full((2, 3), np.nan), n_boot=100).mean)


def test_models_resampled_widens_the_interval():
    # catches: the seed weights ignored (intervals over images only) in the replicated design
    rng = np.random.default_rng(6)
    c, r, n = 5, 5, 30
    seed_effect = rng.normal(scale=0.2, size=(c, 1, 1))
    cross = 0.3 + seed_effect + 0.02 * rng.normal(size=(c, r, n))
    ceiling, floor = np.full((c, c, n), 0.8), np.full((c, c, n), 0.1)
    a = sanity.randomization_test(cross, ceiling, floor, cut=0.5, n_boot=400, resample_models=True)
    b = sanity.randomization_test(cross, ceiling, floor, cut=0.5, n_boot=400, resample_models=False)
    assert (a.rho.hi - a.rho.lo) > 3 * (b.rho.hi - b.rho.lo)


def test_randomization_test_point_estimates_are_the_plain_means():
    # catches: a ceiling that includes the diagonal (a control with itself) or a wrong axis
    rng = np.random.default_rng(3)
    cross = rng.uniform(size=(3, 2, 6))
    ceiling = rng.uniform(size=(3, 3, 6))
    ceiling[[0, 1, 2], [0, 1, 2]] = 1.0          # the diagonal must be ignored
    floor = rng.uniform(size=(3, 3, 6))
    floor[[0, 1, 2], [0, 1, 2]] = 5.0
    r = sanity.randomization_test(cross, ceiling, floor, cut=0.5, n_boot=100)
    off = ~np.eye(3, dtype=bool)
    assert r.cross.mean == pytest.approx(cross.mean())
    assert r.ceiling.mean == pytest.approx(ceiling[off].mean())
    assert r.floor.mean == pytest.approx(floor[off].mean())
    assert r.rho.mean == pytest.approx((cross.mean() - floor[off].mean()) / (ceiling[off].mean() - floor[off].mean()))
    assert r.cross.lo <= r.cross.mean <= r.cross.hi
    with pytest.raises(ValueError, match="true-label models"):
        sanity.randomization_test(cross[:1], ceiling[:1, :1], floor[:1, :1], cut=0.5)


def test_alpha_sets_the_interval_width():
    # catches: a hard-coded 95% level
    rng = np.random.default_rng(8)
    arrays = _constant(cross=0.4, ceiling=0.8, floor=0.2, rng=rng)
    wide = sanity.randomization_test(*arrays, cut=0.5, alpha=0.01, n_boot=400)
    narrow = sanity.randomization_test(*arrays, cut=0.5, alpha=0.2, n_boot=400)
    assert wide.rho.hi - wide.rho.lo > narrow.rho.hi - narrow.rho.lo
    iv = lambda a: sanity.bootstrap_mean(rng.normal(size=50), alpha=a, seed=1)  # noqa: E731
    assert iv(0.01).hi - iv(0.01).lo > iv(0.3).hi - iv(0.3).lo


def test_holm_matches_the_step_down_definition():
    # catches: Bonferroni instead of Holm, a missing monotone step, or the adjusted values reordered
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(sanity.holm(p), [0.03, 0.06, 0.06, 0.02])
    assert sanity.holm([0.5, 0.9]).tolist() == [1.0, 1.0]
    r = sanity.randomization_test(*_constant(cross=0.2, ceiling=0.8, floor=0.2), cut=0.5, n_boot=200)
    assert sanity.adjusted_outcome(r, 0.001) == "pass" and sanity.adjusted_outcome(r, 0.2) == "inconclusive"


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


@pytest.mark.parametrize("order", randomization.ORDERS)
def test_cascade_in_place_gives_every_step_the_weights_of_cascade(order):
    # catches: a step that re-draws from the trained weights instead of adding one more layer, seeds
    # shifted by a step, a reused model not reset to the trained weights before its second run, or
    # the caller's model changed (Q5.4 reuses one model for every order and draw)
    model = build_cnn(32, 1, seed=0)
    before = [w.copy() for w in model.get_weights()]
    into = randomization.copy_of(model)
    for other in ("bottom_up" if order == "top_down" else "top_down", order):   # `into` already randomized once
        got = [(s.randomized, [w.copy() for w in s.model.get_weights()])
               for s in randomization.cascade_in_place(model, other, seed=3, into=into)]
    want = randomization.cascade(model, order, seed=3)
    assert [r for r, _ in got] == [s.randomized for s in want]
    for (_, weights), step in zip(got, want):
        for a, b in zip(weights, step.model.get_weights()):
            np.testing.assert_array_equal(a, b)
    for w, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w, b)
    with pytest.raises(ValueError, match="order expects"):
        randomization.cascade_in_place(model, "sideways", seed=0)
    with pytest.raises(ValueError, match="into expects the architecture"):
        randomization.cascade_in_place(model, order, seed=0,
                                       into=keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(2, 3)]))


def test_bootstrap_mean_interval_matches_the_normal_theory():
    """400 draws of N(0, 1): the 95% interval of the mean is about mean +- 1.96 / 20, symmetric.
    Catches: other percentiles than 2.5 / 97.5, or resampling that ignores the images."""
    v = np.random.default_rng(11).normal(size=400)
    iv = sanity.bootstrap_mean(v, n_boot=20000, seed=3)
    half = 1.96 * v.std() / 20
    assert iv.hi - iv.mean == pytest.approx(half, rel=0.06)
    assert iv.mean - iv.lo == pytest.approx(half, rel=0.06)

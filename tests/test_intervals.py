"""Intervals of the test-set metrics (Q2)."""

import numpy as np
import pytest

from report.q2_model import versus
from xaikit import intervals


def test_wilson_matches_the_closed_form():
    # catches: a Wald interval (symmetric, can leave [0, 1]) or k and n swapped
    k, n, z = 45, 50, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    e = intervals.wilson(k, n)
    assert e.value == pytest.approx(0.9)
    assert e.lo == pytest.approx(centre - half, abs=1e-9) and e.hi == pytest.approx(centre + half, abs=1e-9)
    assert intervals.wilson(10, 10).hi == pytest.approx(1.0) and intervals.wilson(10, 10).lo < 1.0
    with pytest.raises(ValueError, match="0 <= k <= n"):
        intervals.wilson(11, 10)


def test_auc_bootstrap_brackets_the_auc_and_shrinks_with_n():
    # catches: resampling that ignores the labels, or an interval that does not contain the estimate
    rng = np.random.default_rng(0)

    def sample(n):
        y = np.repeat([0, 1], n)
        return y, rng.normal(size=2 * n) + y

    small, large = (intervals.auc_bootstrap(*sample(n), n_boot=400) for n in (30, 600))
    for e in (small, large):
        assert e.lo <= e.value <= e.hi
    assert (large.hi - large.lo) < (small.hi - small.lo)
    assert 0.70 < large.value < 0.80                   # AUC of N(1,1) vs N(0,1) is Phi(1/sqrt 2) = 0.760
    y = np.array([0, 0, 1, 1])
    assert intervals.auc_bootstrap(y, np.array([0.1, 0.2, 0.8, 0.9]), n_boot=200).lo == 1.0


def test_classification_intervals_count_the_right_cells():
    # catches: sensitivity and specificity swapped, or the threshold compared with > instead of >=
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.5, 0.5, 0.9, 0.8, 0.7, 0.3, 0.6])
    ci = intervals.classification_intervals(y, s, 0.5, n_boot=200)
    # TN 2, FP 2, FN 1, TP 5: every count differs from the others, so no swap goes unnoticed
    assert ci["sensitivity"].value == pytest.approx(5 / 6) and ci["sensitivity"].n == 6
    assert ci["specificity"].value == pytest.approx(2 / 4) and ci["specificity"].n == 4
    assert ci["accuracy"].value == pytest.approx(7 / 10)


def test_published_value_against_our_interval():
    assert versus({"lo": 0.8, "hi": 0.9}, 0.7) == "below"
    assert versus({"lo": 0.8, "hi": 0.9}, 0.95) == "above"
    assert versus({"lo": 0.8, "hi": 0.9}, 0.85) == "within"


def test_binary_metrics_without_a_class_report_zero_not_one():
    """A split without NORMAL (or PNEUMONIA) images has no specificity (sensitivity): it is
    reported as 0, never as a perfect 1. Catches: zero_division=1."""
    from xaikit.metrics import binary_metrics
    m = binary_metrics(np.array([1, 1, 1]), np.array([0.9, 0.8, 0.2]), 0.5)
    assert m.specificity == 0.0 and m.sensitivity == pytest.approx(2 / 3)
    m0 = binary_metrics(np.array([0, 0]), np.array([0.1, 0.9]), 0.5)
    assert m0.sensitivity == 0.0 and m0.precision == 0.0


# --- patient-clustered intervals with threshold re-selection (issue 19, Q2) ---------------------

def _clustered_data(rng, n_patients, per_patient, shift=1.5):
    """Scores in (0, 1); every image of a patient repeats that patient's score and label."""
    y = np.repeat(np.arange(n_patients) % 3 != 0, per_patient).astype(int)   # 2:1 PNEUMONIA
    s = 1 / (1 + np.exp(-(np.repeat(rng.normal(size=n_patients), per_patient) + shift * (2 * y - 1) / 2)))
    g = np.array([f"{lab}:p{i // per_patient}" for i, lab in enumerate(y)])
    return y, s, g


def test_clustered_point_values_are_the_builds_threshold_and_metrics():
    # catches: a point value taken from a resampled threshold, or the threshold compared with > not >=
    from xaikit.metrics import binary_metrics, youden_threshold
    rng = np.random.default_rng(1)
    yv, sv, gv = _clustered_data(rng, 90, 2)
    yt, st, gt = _clustered_data(rng, 120, 3)
    r = intervals.clustered_threshold_bootstrap(yv, sv, gv, yt, st, gt, n_boot=200, seed=0, level=0.9)
    thr = youden_threshold(yv, sv)
    m = binary_metrics(yt, st, thr)
    assert r.threshold.value == thr
    for k in ("accuracy", "sensitivity", "specificity", "auc"):
        e = getattr(r, k)
        assert e.value == pytest.approx(getattr(m, k)) and e.lo <= e.value <= e.hi
    assert r.patients == {"val": {"NORMAL": 30, "PNEUMONIA": 60}, "test": {"NORMAL": 40, "PNEUMONIA": 80}}
    assert r.largest["test"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert r.sensitivity.n == 240 and r.specificity.n == 120 and r.threshold.n == 180


def test_clustered_intervals_resample_patients_not_images():
    """Four identical images per patient carry the information of one: the interval must be about
    twice as wide as when every image is its own patient. Catches: resampling images (groups ignored)."""
    rng = np.random.default_rng(2)
    yv, sv, gv = _clustered_data(rng, 150, 1)
    yt, st, gt = _clustered_data(rng, 150, 4)
    fixed = lambda y, s: 0.5   # noqa: E731 - threshold fixed: only the test resampling differs
    kw = dict(n_boot=400, seed=0, level=0.9, select=fixed)
    clustered = intervals.clustered_threshold_bootstrap(yv, sv, gv, yt, st, gt, **kw)
    alone = intervals.clustered_threshold_bootstrap(yv, sv, gv, yt, st,
                                                    np.array([f"{v}:{i}" for i, v in enumerate(yt)]), **kw)
    for k in ("accuracy", "auc"):
        wc, wa = (getattr(e, k).hi - getattr(e, k).lo for e in (clustered, alone))
        assert 1.5 < wc / wa < 2.7, (k, wc, wa)


def test_clustered_intervals_carry_the_thresholds_uncertainty():
    """Catches: the threshold selected once on the whole validation split instead of in each draw
    (its interval would collapse to a point and the metric intervals would narrow)."""
    rng = np.random.default_rng(3)
    yv, sv, gv = _clustered_data(rng, 40, 1, shift=1.0)
    yt, st, gt = _clustered_data(rng, 300, 1, shift=1.0)
    r = intervals.clustered_threshold_bootstrap(yv, sv, gv, yt, st, gt, n_boot=250, seed=0, level=0.9)
    thr = r.threshold.value
    frozen = intervals.clustered_threshold_bootstrap(yv, sv, gv, yt, st, gt, n_boot=250, seed=0, level=0.9,
                                                     select=lambda y, s: thr)
    assert r.threshold.hi - r.threshold.lo > 0.02
    assert frozen.threshold.lo == frozen.threshold.hi == thr
    w = lambda e: e.hi - e.lo   # noqa: E731
    assert w(r.sensitivity) > w(frozen.sensitivity) and w(r.specificity) > w(frozen.specificity)
    assert w(r.auc) == pytest.approx(w(frozen.auc), rel=0.5)   # AUC needs no threshold


def test_clustered_intervals_reject_a_patient_in_both_classes():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.6, 0.9])
    g = np.array(["a", "b", "b", "c"])
    with pytest.raises(ValueError, match="one class each"):
        intervals.clustered_threshold_bootstrap(y, s, g, y, s, np.array(["a", "b", "c", "d"]),
                                                n_boot=10, seed=0, level=0.9)
    with pytest.raises(ValueError, match="level"):
        intervals.clustered_threshold_bootstrap(y, s, np.array(["a", "b", "c", "d"]), y, s,
                                                np.array(["a", "b", "c", "d"]), n_boot=10, seed=0, level=95)


def test_two_sample_matches_normal_theory_and_resamples_each_sample_alone():
    """Catches: the two samples resampled together (paired: unequal lengths fail), the interval taken
    at the wrong percentiles (width off normal theory), and rows flattened (image rows would break)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 800), rng.normal(0.5, 2.0, 2400)
    e = intervals.two_sample(lambda u, v: v.mean() - u.mean(), a, b, n_boot=2000, seed=1)
    se = np.sqrt(1.0 / 800 + 4.0 / 2400)
    assert e.value == pytest.approx(b.mean() - a.mean()) and e.n == 800
    assert e.hi - e.lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert e.lo < e.value < e.hi
    imgs = intervals.two_sample(lambda u, v: float(np.abs(v.mean(0) - u.mean(0)).mean()),
                                rng.random((30, 4, 4)), rng.random((40, 4, 4)), n_boot=50)
    assert 0 <= imgs.lo <= imgs.hi
    with pytest.raises(ValueError, match="got 1 and 40"):
        intervals.two_sample(np.subtract, np.zeros(1), np.zeros(40))
    two = intervals.two_sample(lambda u, v: v.mean() - u.mean(), np.array([0.0, 1.0]), np.array([2.0, 3.0]), n_boot=20)
    assert two.n == 2 and two.lo <= two.value <= two.hi       # two rows per sample are enough


def test_a_direction_is_named_only_when_its_interval_excludes_zero():
    """Catches: the brighter / sharper class of Q1.2 named from point values (0.483 vs 0.487) alone."""
    E = intervals.Estimate
    assert intervals.sign_of(E(0.2, 0.1, 0.3, 9), "PNEUMONIA", "NORMAL") == "PNEUMONIA"
    assert intervals.sign_of(E(-0.2, -0.3, -0.1, 9), "PNEUMONIA", "NORMAL") == "NORMAL"
    assert intervals.sign_of(E(0.004, -0.011, 0.019, 9), "PNEUMONIA", "NORMAL") is None

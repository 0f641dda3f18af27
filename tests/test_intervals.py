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

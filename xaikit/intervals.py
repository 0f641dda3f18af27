"""Confidence intervals for test-set metrics: Wilson for proportions, bootstrap for AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}


def wilson(k: int, n: int, level: float = 0.95) -> Estimate:
    """k successes of n with the Wilson score interval (scipy)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson expects 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n))


def auc_bootstrap(y: np.ndarray, scores: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                  level: float = 0.95) -> Estimate:
    """ROC AUC with a percentile interval from resampling images within each class."""
    y, scores = np.asarray(y).astype(int), np.asarray(scores, np.float64)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"AUC needs both classes, got {len(neg)} negatives and {len(pos)} positives")
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boots.append(roc_auc_score(y[idx], scores[idx]))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return Estimate(float(roc_auc_score(y, scores)), float(lo), float(hi), int(len(y)))


def classification_intervals(y: np.ndarray, scores: np.ndarray, threshold: float, *,
                             n_boot: int = 2000, seed: int = 0) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity (Wilson) and AUC (bootstrap) at ``threshold``."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    return {"accuracy": wilson(int(np.sum(pred == y)), len(y)),
            "sensitivity": wilson(int(np.sum((pred == 1) & (y == 1))), int(np.sum(y == 1))),
            "specificity": wilson(int(np.sum((pred == 0) & (y == 0))), int(np.sum(y == 0))),
            "auc": auc_bootstrap(y, scores, n_boot=n_boot, seed=seed)}


def bootstrap(statistic, *samples, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """``statistic(*samples)`` with a percentile interval from resampling the rows of all
    ``samples`` together (paired; ``scipy.stats.bootstrap``). NaN rows are kept: the
    statistic decides how to treat them."""
    arrays = [np.asarray(s, np.float64) for s in samples]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"paired samples expect equal lengths, got {[len(a) for a in arrays]}")
    if n < 2:
        raise ValueError(f"bootstrap expects >= 2 paired rows, got {n}")
    value = float(statistic(*arrays))
    res = stats.bootstrap(tuple(arrays), statistic, paired=True, vectorized=False, n_resamples=n_boot,
                          method="percentile", confidence_level=level,
                          random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Estimate(value, float(ci.low), float(ci.high), int(n))


def mean_ci(values, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """Mean of ``values`` (NaN excluded) with a bootstrap percentile interval over its entries."""
    v = np.asarray(values, np.float64).ravel()
    return bootstrap(np.nanmean, v, n_boot=n_boot, seed=seed, level=level)

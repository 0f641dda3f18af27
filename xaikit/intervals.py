"""Confidence intervals for test-set metrics: Wilson for proportions, bootstrap for AUC, and a
patient-clustered bootstrap that re-selects the operating threshold in every draw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from .metrics import youden_threshold


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
                             n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                             auc: Estimate | None = None) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity (Wilson) and AUC (bootstrap) at ``threshold``: images
    treated as independent and the threshold as fixed. The AUC does not depend on the threshold:
    ``auc``, when given (the same scores' :func:`auc_bootstrap`), is used instead of resampling again."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(scores) >= threshold).astype(int)
    return {"accuracy": wilson(int(np.sum(pred == y)), len(y), level),
            "sensitivity": wilson(int(np.sum((pred == 1) & (y == 1))), int(np.sum(y == 1)), level),
            "specificity": wilson(int(np.sum((pred == 0) & (y == 0))), int(np.sum(y == 0)), level),
            "auc": auc if auc is not None else auc_bootstrap(y, scores, n_boot=n_boot, seed=seed, level=level)}


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


def two_sample(statistic, a, b, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """``statistic(a, b)`` of two independent samples (e.g. two classes' images) with a percentile
    interval from resampling each sample on its own; ``n`` is the smaller sample's size. Rows may
    have any shape (whole images): they are resampled along axis 0, which ``scipy.stats.bootstrap``
    does only for scalar rows."""
    a, b = np.asarray(a), np.asarray(b)
    if min(len(a), len(b)) < 2:
        raise ValueError(f"two_sample expects >= 2 rows per sample, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
                      for _ in range(n_boot)], np.float64)
    lo, hi = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Estimate(float(statistic(a, b)), float(lo), float(hi), int(min(len(a), len(b))))


def sign_of(e: Estimate, positive: str, negative: str) -> str | None:
    """``positive`` when the interval lies above 0, ``negative`` when below, None when it contains 0."""
    return positive if e.lo > 0 else negative if e.hi < 0 else None


def mean_ci(values, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """Mean of ``values`` (NaN excluded) with a bootstrap percentile interval over its entries."""
    v = np.asarray(values, np.float64).ravel()
    return bootstrap(np.nanmean, v, n_boot=n_boot, seed=seed, level=level)


@dataclass(frozen=True)
class ClusteredIntervals:
    """Test metrics at a validation-selected threshold with patient-clustered percentile intervals.

    ``threshold``: the point threshold (selected on the whole validation split) with the interval
    of the thresholds re-selected in the draws. ``patients``/``largest``: per split and class,
    the number of patients (clusters) and the most images of one patient."""

    threshold: Estimate
    accuracy: Estimate
    sensitivity: Estimate
    specificity: Estimate
    auc: Estimate
    n_boot: int
    level: float
    seed: int
    patients: dict
    largest: dict

    def metrics(self) -> dict[str, Estimate]:
        return {"accuracy": self.accuracy, "sensitivity": self.sensitivity,
                "specificity": self.specificity, "auc": self.auc}


def _clusters(y: np.ndarray, groups: np.ndarray, split: str) -> list[list[np.ndarray]]:
    """Per class (0, 1): the index arrays of its groups; a group must hold one class only."""
    out = []
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        if len(idx) == 0:
            raise ValueError(f"{split} needs both classes, got none of class {label}")
        names, inverse = np.unique(groups[idx], return_inverse=True)
        out.append([idx[inverse == j] for j in range(len(names))])
    mixed = set(groups[y == 0].tolist()) & set(groups[y == 1].tolist())
    if mixed:
        raise ValueError(f"{split}: groups expect one class each, got {len(mixed)} with both "
                         f"(e.g. {sorted(mixed)[0]!r}); prefix the patient id with the label")
    return out


def _draw(rng: np.random.Generator, clusters: list[list[np.ndarray]]) -> np.ndarray:
    """Indices of one resample: the groups of each class drawn with replacement, as many as it has."""
    return np.concatenate([np.concatenate([c[j] for j in rng.integers(0, len(c), len(c))])
                           for c in clusters])


def clustered_threshold_bootstrap(y_val, scores_val, groups_val, y_test, scores_test, groups_test, *,
                                  n_boot: int, seed: int, level: float,
                                  select=youden_threshold) -> ClusteredIntervals:
    """Accuracy, sensitivity and specificity at a threshold chosen on validation, and AUC, with
    intervals that carry both the test patients' and the threshold's uncertainty.

    Point values: the threshold ``select(y_val, scores_val)`` (Youden's J by default, the rule of
    the build) applied to the whole test split. Each of ``n_boot`` draws resamples the validation
    patients (whole groups, with replacement, within each class), re-selects the threshold on that
    resample with ``select``, then resamples the test patients the same way and computes the
    metrics at the re-selected threshold (AUC needs no threshold). Percentile intervals at
    ``level``; ``seed`` fixes the draws. Groups are patient ids, one class per group."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level expects a value in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot expects >= 1, got {n_boot}")
    yv, sv, gv = np.asarray(y_val).astype(int), np.asarray(scores_val, np.float64), np.asarray(groups_val)
    yt, st, gt = np.asarray(y_test).astype(int), np.asarray(scores_test, np.float64), np.asarray(groups_test)
    for split, arrays in (("validation", (yv, sv, gv)), ("test", (yt, st, gt))):
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"{split} labels, scores and groups expect equal lengths, got "
                             f"{[len(a) for a in arrays]}")
    cv, ct = _clusters(yv, gv, "validation"), _clusters(yt, gt, "test")

    def at(y, s, thr) -> tuple[float, float, float, float]:
        pred = s >= thr
        pos, neg = y == 1, y == 0
        # AUC as the Mann-Whitney statistic with average ranks for ties (= roc_auc_score, faster)
        r, n1 = stats.rankdata(s), int(pos.sum())
        auc = (r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * int(neg.sum()))
        return float(np.mean(pred == pos)), float(np.mean(pred[pos])), float(np.mean(~pred[neg])), float(auc)

    thr0 = float(select(yv, sv))
    point = at(yt, st, thr0)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, 5))
    for b in range(n_boot):
        iv = _draw(rng, cv)
        thr = float(select(yv[iv], sv[iv]))
        it = _draw(rng, ct)
        boots[b] = (thr, *at(yt[it], st[it], thr))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail], axis=0)
    n_pos, n_neg, n = int(np.sum(yt == 1)), int(np.sum(yt == 0)), len(yt)
    est = [Estimate(v, float(a), float(b), k) for v, a, b, k in
           zip((thr0, *point), lo, hi, (len(yv), n, n_pos, n_neg, n))]
    names = ("NORMAL", "PNEUMONIA")
    patients = {split: {names[k]: len(c[k]) for k in (0, 1)} for split, c in (("val", cv), ("test", ct))}
    largest = {split: {names[k]: max(len(g) for g in c[k]) for k in (0, 1)} for split, c in (("val", cv), ("test", ct))}
    return ClusteredIntervals(*est, n_boot=int(n_boot), level=float(level), seed=int(seed),
                              patients=patients, largest=largest)

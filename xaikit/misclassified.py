"""The classifier's errors at an operating threshold: which images, a matched sample of correct
ones, and the measures that compare them (pure functions over arrays and names).

Labels only describe here: the threshold is given, the samples are drawn by a seed alone, and
the file-name families come from names (of the training split) before any test label is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .intervals import Estimate, bootstrap, wilson


def decide(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The decided class: 1 (PNEUMONIA) when p >= threshold, else 0."""
    return (np.asarray(probs, np.float64) >= threshold).astype(int)


def wrong(labels: np.ndarray, probs: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the images on the wrong side of ``threshold``."""
    labels = np.asarray(labels).astype(int)
    if labels.shape != np.shape(probs):
        raise ValueError(f"labels and probs expect the same shape, got {labels.shape} and {np.shape(probs)}")
    return decide(probs, threshold) != labels


def seeded_choice(pool: np.ndarray, k: int, seed: int, offset: int = 0) -> np.ndarray:
    """``k`` items of ``pool`` drawn without replacement by ``(seed, offset)`` alone (in draw order)."""
    pool = np.asarray(pool)
    if not 0 <= k <= len(pool):
        raise ValueError(f"seeded_choice expects 0 <= k <= {len(pool)} (pool size), got k={k}")
    return pool[np.random.default_rng((int(seed), int(offset))).permutation(len(pool))[:k]]


@dataclass(frozen=True)
class ErrorSample:
    """Per true class (0, 1): all errors, the explained errors and their matched correct images
    (indices into the arrays given; explained[c] and matched[c] have the same length)."""

    errors: dict
    explained: dict
    matched: dict


def error_sample(labels: np.ndarray, probs: np.ndarray, threshold: float, cap: int, seed: int,
                 offsets: tuple[int, int] = (0, 1)) -> ErrorSample:
    """Every error per true class; of them at most ``cap`` (seeded, offset ``offsets[0]``) to
    explain, and as many correctly classified images of the same true class (seeded, offset
    ``offsets[1]``). When a class has fewer correct images than that, both are cut to that number."""
    labels = np.asarray(labels).astype(int)
    bad = wrong(labels, probs, threshold)
    errors, explained, matched = {}, {}, {}
    for c in (0, 1):
        err = np.flatnonzero(bad & (labels == c))
        ok = np.flatnonzero(~bad & (labels == c))
        k = min(cap, len(err), len(ok))
        errors[c] = err
        explained[c] = seeded_choice(err, k, seed, offsets[0])
        matched[c] = seeded_choice(ok, k, seed, offsets[1])
    return ErrorSample(errors, explained, matched)


def match_same_decision(labels: np.ndarray, probs: np.ndarray, threshold: float, explained: dict) -> ErrorSample:
    """For the explained errors of each true class c (decided 1 - c), the correctly classified images
    of the *decided* class (true 1 - c, decided 1 - c), each the nearest in P(PNEUMONIA) to its
    error, without replacement (errors in the given order; ties to the lower index). Errors and
    matches then explain the same target at a similar confidence: a difference between their maps
    is neither the switch of the explained class nor an uncertain decision. When the decided class
    has fewer correct images than errors, the errors are cut to that number."""
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, np.float64)
    bad = wrong(labels, probs, threshold)
    errors, kept, matched = {}, {}, {}
    for c in (0, 1):
        errors[c] = np.flatnonzero(bad & (labels == c))
        pool = list(np.flatnonzero(~bad & (labels == 1 - c)))
        take = np.asarray(explained[c], int)[:len(pool)]
        out = []
        for i in take:
            j = min(range(len(pool)), key=lambda t: (abs(probs[pool[t]] - probs[i]), pool[t]))  # noqa: B023
            out.append(pool.pop(j))
        kept[c], matched[c] = take, np.asarray(out, int)
    return ErrorSample(errors, kept, matched)


def loo_mean_maps(maps: np.ndarray) -> np.ndarray:
    """For each map, the mean of the other maps of the group (the spatial-prior null: where the
    group puts its mass, without the image's own content). Needs >= 2 maps."""
    maps = np.asarray(maps, np.float64)
    n = len(maps)
    if n < 2:
        raise ValueError(f"a leave-one-out mean expects >= 2 maps, got {n}")
    return (maps.sum(0)[None] - maps) / (n - 1)


def diff_means(a: np.ndarray, b: np.ndarray, *, n_boot: int, seed: int, level: float) -> Estimate | None:
    """mean(a) - mean(b) for two independent samples, with a percentile interval from resampling
    each sample on its own; None when either has fewer than 2 values."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    value = float(a.mean() - b.mean())
    res = stats.bootstrap((a, b), lambda u, v, axis=-1: u.mean(axis) - v.mean(axis), paired=False,
                          vectorized=True, n_resamples=n_boot, method="percentile",
                          confidence_level=level, random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Estimate(value, float(ci.low), float(ci.high), int(len(a) + len(b)))


def direction(e: Estimate | dict | None, words: tuple[str, str, str] = ("more", "less", "no different")) -> str:
    """The word an interval decides: first word when it lies above 0, second when below, third
    when it contains 0; "cannot tell" when there is no interval (too few images) or it is NaN."""
    if e is None:
        return "cannot tell"
    lo, hi = (e["lo"], e["hi"]) if isinstance(e, dict) else (e.lo, e.hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "cannot tell"
    return words[0] if lo > 0 else words[1] if hi < 0 else words[2]


def _spearman(u: np.ndarray, v: np.ndarray) -> float:
    if np.ptp(u) == 0 or np.ptp(v) == 0:
        return float("nan")
    return float(stats.spearmanr(u, v).statistic)


def rank_correlation(stat: np.ndarray, probs: np.ndarray, *, n_boot: int, seed: int,
                     level: float) -> Estimate:
    """Spearman correlation of a statistic with P(PNEUMONIA), with a bootstrap interval over
    images (pairs resampled); NaN throughout when either is constant or n < 3."""
    stat, probs = np.asarray(stat, np.float64), np.asarray(probs, np.float64)
    if len(stat) < 3 or np.ptp(stat) == 0 or np.ptp(probs) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), int(len(stat)))
    return bootstrap(_spearman, stat, probs, n_boot=n_boot, seed=seed, level=level)


def correlation_word(e: Estimate | dict) -> str:
    """The rule for a correlation: it counts only when its interval excludes 0."""
    return direction(e, ("positive", "negative", "none"))


def family(name: str) -> str:
    """A file name's family: the stem with every run of digits written N (``person12_virus_3.jpeg``
    -> ``personN_virus_N``)."""
    stem = str(name).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"\d+", "N", stem)


def families(train_names, min_count: int) -> tuple[str, ...]:
    """The families with at least ``min_count`` files among ``train_names`` (fixed before any
    test image is seen); sorted."""
    counts: dict[str, int] = {}
    for nm in train_names:
        f = family(nm)
        counts[f] = counts.get(f, 0) + 1
    return tuple(sorted(f for f, k in counts.items() if k >= min_count))


def family_of(names, known: tuple[str, ...], other: str = "other") -> np.ndarray:
    """Each name's family, or ``other`` when it is not one of ``known``."""
    return np.array([f if f in known else other for f in map(family, names)], dtype=object)


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, level: float) -> Estimate:
    """k1/n1 - k2/n2 with Newcombe's hybrid score interval (method 10) from the two Wilson
    intervals."""
    a, b = wilson(k1, n1, level), wilson(k2, n2, level)
    d = a.value - b.value
    lo = d - np.sqrt((a.value - a.lo) ** 2 + (b.hi - b.value) ** 2)
    hi = d + np.sqrt((a.hi - a.value) ** 2 + (b.value - b.lo) ** 2)
    return Estimate(float(d), float(lo), float(hi), int(n1 + n2))


def family_rates(fams: np.ndarray, errors: np.ndarray, level: float) -> dict:
    """Per family: errors, images, the error rate (Wilson) and its difference from the rest of
    the images given (Newcombe; None when the family is all of them), with the word it decides."""
    fams, errors = np.asarray(fams), np.asarray(errors, bool)
    out = {}
    for f in sorted(set(fams.tolist())):
        sel = fams == f
        k, n = int(errors[sel].sum()), int(sel.sum())
        kr, nr = int(errors[~sel].sum()), int((~sel).sum())
        vs = newcombe_diff(k, n, kr, nr, level) if nr > 0 else None
        out[f] = {"errors": k, "n": n, "rate": wilson(k, n, level).as_dict(),
                  "vs_rest": vs.as_dict() if vs else None, "word": direction(vs)}
    return out


def _pooled_auc(groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mann-Whitney's P(an error's value > a correct image's value) (ties count 1/2), pooled over the
    (errors, correct) groups, each non-empty on both sides, weighted by their pairs."""
    u = pairs = 0.0
    for err, ok in groups:
        r = stats.rankdata(np.concatenate([err, ok]))
        u += r[:len(err)].sum() - len(err) * (len(err) + 1) / 2
        pairs += len(err) * len(ok)
    return u / pairs


def within_family_auc(values: np.ndarray, errors: np.ndarray, families: np.ndarray, *, n_boot: int, seed: int,
                      level: float) -> Estimate:
    """Does a statistic set the errors apart from the correct images of their class, family by family?
    P(an error's value > a correct image's value of the same file-name family) (Mann-Whitney, ties 1/2),
    pooled over the families that hold both, weighted by their pairs: 0.5 when the statistic does not set
    the errors apart within families. The percentile interval resamples errors and correct images within
    each family; NaN when no family holds both or the values are constant.""" 
    values, errors, families = np.asarray(values, np.float64), np.asarray(errors, bool), np.asarray(families)
    groups = [(values[(families == f) & errors], values[(families == f) & ~errors]) for f in sorted(set(families.tolist()))]
    groups = [(e, c) for e, c in groups if len(e) and len(c)]
    n = int(sum(len(e) + len(c) for e, c in groups))
    if not groups or np.ptp(values) == 0:        # no pair, or a statistic constant in this class: nothing to tell
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    draws = [_pooled_auc([(rng.choice(e, len(e)), rng.choice(c, len(c))) for e, c in groups]) for _ in range(n_boot)]
    lo, hi = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Estimate(float(_pooled_auc(groups)), float(lo), float(hi), n)


def error_word(e: Estimate | dict) -> str:
    """"higher" / "lower" on errors when the interval of :func:`within_family_auc` lies above / below 0.5,
    "no different" when it contains 0.5, "cannot tell" without an interval."""
    lo, hi = (e["lo"], e["hi"]) if isinstance(e, dict) else (e.lo, e.hi)
    return direction({"lo": lo - 0.5, "hi": hi - 0.5}, ("higher", "lower", "no different"))

"""Map similarity measures used in Q3-Q5 (scipy, scikit-image)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity
from skimage.transform import resize

from .intervals import Estimate


def to_2d(maps: np.ndarray) -> np.ndarray:
    """N x H x W x C attributions -> N x H x W by summing channels (N x H x W unchanged)."""
    maps = np.asarray(maps, np.float32)
    return maps.sum(-1) if maps.ndim == 4 else maps


def pool(maps: np.ndarray, cells: int) -> np.ndarray:
    """Average-pool N x H x W maps to N x cells x cells (H and W divisible by cells)."""
    maps = to_2d(maps)
    n, h, w = maps.shape
    if h % cells or w % cells:
        return np.stack([resize(m, (cells, cells), anti_aliasing=True) for m in maps])
    return maps.reshape(n, cells, h // cells, cells, w // cells).mean(axis=(2, 4))


def unit_range(m: np.ndarray) -> np.ndarray:
    """Scale a map to [0, 1]; a flat map becomes zeros."""
    lo, hi = float(np.min(m)), float(np.max(m))
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m, dtype=np.float64)


def _digest(m: np.ndarray) -> bytes:
    """A key of an array's bytes, shape and type (for the memos below)."""
    m = np.ascontiguousarray(m)
    return hashlib.blake2b(m.tobytes() + repr((m.shape, m.dtype.str)).encode(), digest_size=16).digest()


def _memo(store: OrderedDict, size: int, m: np.ndarray, compute) -> np.ndarray:
    """``compute(m)`` remembered by :func:`_digest` in ``store`` (least recent dropped past ``size``),
    returned read-only: a pure memo (the same array gives the same result), not state that changes one."""
    key = _digest(m)
    found = store.get(key)
    if found is not None:
        store.move_to_end(key)
        return found
    found = compute(m)
    found.flags.writeable = False
    store[key] = found
    if len(store) > size:
        store.popitem(last=False)
    return found


_RANK_MEMO: OrderedDict[bytes, np.ndarray] = OrderedDict()   # flat map digest -> its ranks (float32, exact)
RANK_MEMO_SIZE = 1024       # at most about 200 MB of ranks of 224 x 224 maps


def ranks(m: np.ndarray) -> np.ndarray:
    """scipy's average ranks of a flat map, remembered like :func:`hog_features` (Q5 ranks each map
    against many others). Stored as float32, which holds every rank (an integer or a half below 2^23)
    exactly."""
    return _memo(_RANK_MEMO, RANK_MEMO_SIZE, np.ravel(m), lambda v: stats.rankdata(v).astype(np.float32))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (0 when either is constant): the Pearson correlation of
    their ranks, computed as ``scipy.stats.spearmanr`` does (bit for bit, ``tests/test_similarity.py``)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    if a.shape != b.shape:
        raise ValueError(f"spearman expects two maps of one size, got {a.size} and {b.size} values")
    ranked = np.empty((2, a.size))       # the layout of spearmanr's ranks (apply_along_axis, transposed)
    ranked[0], ranked[1] = ranks(a), ranks(b)
    return float(np.corrcoef(ranked.T, rowvar=False)[1, 0])


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 2-D maps, each first scaled to [0, 1]."""
    return float(structural_similarity(unit_range(a), unit_range(b), data_range=1.0))


_HOG_MEMO: OrderedDict[bytes, np.ndarray] = OrderedDict()   # map digest -> features, least recent first
HOG_MEMO_SIZE = 2048        # about 130 MB of features at 8,100 floats each


def hog_features(m: np.ndarray) -> np.ndarray:
    """HOG features (scikit-image) of one 2-D map scaled to [0, 1], cells of max(4, H // 16) px.

    A map is compared with many others (Q5 compares each model's map of an image with every other
    model's, and the cascade each step's with the trained model's), so the features of the most
    recent maps are remembered by a digest of the map's bytes, shape and type (:func:`_memo`)."""
    def compute(m):
        cell = max(4, m.shape[0] // 16)
        return hog(unit_range(m), pixels_per_cell=(cell, cell), cells_per_block=(2, 2))
    return _memo(_HOG_MEMO, HOG_MEMO_SIZE, m, compute)


def hog_pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the HOG features of two 2-D maps scaled to [0, 1]."""
    ha, hb = hog_features(a), hog_features(b)
    if np.ptp(ha) == 0 or np.ptp(hb) == 0:
        return 0.0
    return float(stats.pearsonr(ha, hb).statistic)


def rank_corr_matrix(maps: np.ndarray) -> np.ndarray:
    """Pairwise Spearman correlations of N maps (N x N), via ranks and one matrix product."""
    flat = to_2d(maps).reshape(len(maps), -1)
    ranks = np.apply_along_axis(stats.rankdata, 1, flat)
    ranks -= ranks.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ranks, axis=1, keepdims=True)
    z = ranks / np.where(norms > 0, norms, 1.0)
    return z @ z.T


@dataclass(frozen=True)
class Consistency:
    within_a: float      # mean pairwise Spearman within class 0
    within_b: float      # within class 1
    across: float        # between classes
    n_a: int
    n_b: int


def consistency(maps: np.ndarray, labels: np.ndarray) -> Consistency:
    """Mean pairwise rank correlation of maps within each class and across the classes."""
    labels = np.asarray(labels)
    c = rank_corr_matrix(maps)
    a, b = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"consistency needs >= 2 maps per class, got {len(a)} and {len(b)}")

    def mean_offdiag(idx):
        sub = c[np.ix_(idx, idx)]
        return float((sub.sum() - np.trace(sub)) / (len(idx) * (len(idx) - 1)))

    return Consistency(mean_offdiag(a), mean_offdiag(b), float(c[np.ix_(a, b)].mean()),
                       len(a), len(b))


@dataclass(frozen=True)
class ConsistencyTest:
    """Within-class minus across-class similarity with its permutation p-value and interval."""

    within: float        # mean of the two classes' within-class means
    across: float
    diff: float          # within - across
    lo: float            # bootstrap interval of diff (images resampled within each class)
    hi: float
    p_value: float       # one-sided permutation test of diff > 0 (labels shuffled)
    n_perm: int


def _within(c: np.ndarray, idx: np.ndarray) -> float:
    """Mean of ``c`` over pairs of distinct images in ``idx`` (which may repeat indices after
    resampling: pairs of the same image are left out); NaN when there is no such pair."""
    sub, same = c[np.ix_(idx, idx)], idx[:, None] == idx[None, :]
    return float(sub[~same].mean()) if (~same).any() else np.nan


def _within_across(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Within (mean of the two groups' within-group means) and across means of the similarity
    matrix ``c`` for index sets a, b."""
    return (_within(c, a) + _within(c, b)) / 2, float(c[np.ix_(a, b)].mean())


def _two_groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    a, b = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"consistency needs >= 2 maps per group, got {len(a)} and {len(b)}")
    return a, b


def _percentiles(boots, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(np.asarray(boots, np.float64), [tail, 100 - tail], axis=0)
    return lo, hi


def consistency_test(maps: np.ndarray, labels: np.ndarray, *, n_perm: int = 2000, n_boot: int = 2000,
                     seed: int = 0, level: float = 0.95) -> ConsistencyTest:
    """Are maps more alike within a class than across classes?

    Similarity is the pairwise Spearman correlation (:func:`rank_corr_matrix`). The p-value
    shuffles the class labels ``n_perm`` times (add-one estimate); the interval resamples
    the images of each class with replacement.
    """
    labels = np.asarray(labels)
    a, b = _two_groups(labels)
    c = rank_corr_matrix(maps)
    within, across = _within_across(c, a, b)
    diff = within - across
    rng = np.random.default_rng(seed)
    perm = []
    for _ in range(n_perm):
        lab = rng.permutation(labels)
        w, x = _within_across(c, np.flatnonzero(lab == 0), np.flatnonzero(lab == 1))
        perm.append(w - x)
    p = (1 + int(np.sum(np.array(perm) >= diff))) / (1 + n_perm)
    boots = []
    for _ in range(n_boot):
        w, x = _within_across(c, rng.choice(a, len(a)), rng.choice(b, len(b)))
        boots.append(w - x)
    lo, hi = _percentiles(boots, level)
    return ConsistencyTest(within, across, diff, float(lo), float(hi), float(p), n_perm)


@dataclass(frozen=True)
class WithinIntervals:
    """Mean pairwise Spearman between distinct images within each group, with percentile
    intervals from one bootstrap that resamples the images of each group with replacement."""

    a: Estimate          # group 0
    b: Estimate          # group 1
    mean: Estimate       # (a + b) / 2, from the same draws


def within_intervals(maps: np.ndarray, labels: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> WithinIntervals:
    """Within-group consistency of ``maps`` (groups 0 and 1 of ``labels``) with its intervals:
    each draw resamples the images of each group, then averages the Spearman correlations of
    all pairs of distinct images (pairs of an image with its own copy are left out)."""
    a, b = _two_groups(labels)
    c = rank_corr_matrix(maps)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        wa, wb = _within(c, rng.choice(a, len(a))), _within(c, rng.choice(b, len(b)))
        boots.append((wa, wb, (wa + wb) / 2))
    lo, hi = _percentiles(boots, level)
    va, vb = _within(c, a), _within(c, b)
    n = (len(a), len(b), len(a) + len(b))
    return WithinIntervals(*(Estimate(float(v), float(lo[k]), float(hi[k]), n[k])
                             for k, v in enumerate((va, vb, (va + vb) / 2))))


@dataclass(frozen=True)
class PairedConsistency:
    """Maps against a reference stack of the same images (the input alone |x - baseline|):
    the differences maps - reference of the within-group mean and of within - across, each
    with a percentile interval from one bootstrap in which both stacks use the same resampled
    images (resampled within each group)."""

    within: Estimate       # within(maps) - within(reference)
    specificity: Estimate  # (within - across)(maps) - (within - across)(reference)


def paired_consistency(maps: np.ndarray, reference: np.ndarray, labels: np.ndarray, *, n_boot: int = 2000,
                       seed: int = 0, level: float = 0.95) -> PairedConsistency:
    """Are ``maps`` more alike within a group, and more group-specific, than ``reference``?

    Both stacks hold the same N images in the same order. Each bootstrap draw resamples the
    images of each group once and evaluates maps and reference on that one resample, so what
    the two share (the images) cancels in the difference.
    """
    if len(maps) != len(reference):
        raise ValueError(f"maps and reference must hold the same images, got {len(maps)} and {len(reference)}")
    a, b = _two_groups(labels)
    cm, cr = rank_corr_matrix(maps), rank_corr_matrix(reference)

    def stats_for(ia, ib):
        wm, xm = _within_across(cm, ia, ib)
        wr, xr = _within_across(cr, ia, ib)
        return wm - wr, (wm - xm) - (wr - xr)

    rng = np.random.default_rng(seed)
    boots = [stats_for(rng.choice(a, len(a)), rng.choice(b, len(b))) for _ in range(n_boot)]
    lo, hi = _percentiles(boots, level)
    value = stats_for(a, b)
    n = len(a) + len(b)
    return PairedConsistency(Estimate(float(value[0]), float(lo[0]), float(hi[0]), n),
                             Estimate(float(value[1]), float(lo[1]), float(hi[1]), n))


@dataclass(frozen=True)
class ReferenceSpecificity:
    """Within - across of ``maps`` against reference stacks of the same images (one stack per model that learned
    nothing), all from one bootstrap whose draws resample the images of each group once for every stack (and,
    with several stacks, the stacks too: the models are a sample of such models)."""

    per_stack: tuple[Estimate, ...]   # each stack's own within - across, interval over images
    reference: Estimate               # the mean over the stacks, interval over images (the stacks fixed)
    reference_models: Estimate        # the same mean, interval over images and stacks (= reference for one stack)
    difference: Estimate              # maps - the stacks' mean, interval as reference_models
    vs_input: Estimate | None         # the stacks' mean - ``input_alone``, interval as reference_models


def _specificity(c: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> float:
    w, x = _within_across(c, ia, ib)
    return w - x


def specificity_against(maps: np.ndarray, references, labels: np.ndarray, *, input_alone: np.ndarray | None = None,
                        n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> ReferenceSpecificity:
    """Is ``maps`` more group-specific (within - across) than the ``references`` (a list of stacks of the same N
    images in the same order, e.g. the maps of several models that learned nothing)?

    Each draw resamples the images of each group once and evaluates the maps, every stack and ``input_alone`` on
    that one resample (what they share, the images, cancels in the differences); with more than one stack it
    also resamples the stacks with replacement, for the intervals over models. With one stack the draws are those
    of :func:`paired_consistency` (the same images in the same order)."""
    references = list(references)
    if not references:
        raise ValueError("specificity_against expects at least one reference stack, got none")
    for r in references + ([input_alone] if input_alone is not None else []):
        if len(r) != len(maps):
            raise ValueError(f"maps and references must hold the same images, got {len(maps)} and {len(r)}")
    a, b = _two_groups(labels)
    cm, crs = rank_corr_matrix(maps), [rank_corr_matrix(r) for r in references]
    cx = rank_corr_matrix(input_alone) if input_alone is not None else None
    k = len(crs)

    def stats_for(ia, ib, pick):
        per = np.array([_specificity(c, ia, ib) for c in crs])
        ref = per[pick].mean()
        vs_input = (ref - _specificity(cx, ia, ib),) if cx is not None else ()
        return (*per, per.mean(), ref, _specificity(cm, ia, ib) - ref, *vs_input)

    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        ia, ib = rng.choice(a, len(a)), rng.choice(b, len(b))
        boots.append(stats_for(ia, ib, rng.integers(0, k, k) if k > 1 else np.zeros(1, int)))
    lo, hi = _percentiles(boots, level)
    value, n = stats_for(a, b, np.arange(k)), len(a) + len(b)
    est = [Estimate(float(v), float(lo[j]), float(hi[j]), n) for j, v in enumerate(value)]
    return ReferenceSpecificity(tuple(est[:k]), est[k], est[k + 1], est[k + 2],
                                est[k + 3] if cx is not None else None)


def pairwise(maps_a: np.ndarray, maps_b: np.ndarray, measure) -> np.ndarray:
    """``measure`` applied to corresponding 2-D maps of two stacks."""
    a, b = to_2d(maps_a), to_2d(maps_b)
    if a.shape != b.shape:
        raise ValueError(f"map stacks differ in shape: {a.shape} vs {b.shape}")
    return np.array([measure(x, y) for x, y in zip(a, b)])


def adebayo_normalize(m: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Adebayo et al. (2018) normalisation before SSIM/HOG: absolute value, clipped at its
    ``percentile``-th percentile, scaled to [0, 1] (a flat map stays all zeros)."""
    a = np.abs(np.asarray(m, np.float64))
    top = float(np.percentile(a, percentile))
    return np.clip(a, 0.0, top) / top if top > 0 else np.zeros_like(a)


def is_flat(maps: np.ndarray) -> np.ndarray:
    """True for each map with no variation (e.g. a dead, all-zero Grad-CAM)."""
    flat = to_2d(maps).reshape(len(maps), -1)
    return np.ptp(flat, axis=1) == 0


def edge_map(images: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each image: what a 'method' that ignores the model shows."""
    from skimage.filters import sobel
    return np.stack([sobel(im) for im in to_2d(images)]).astype(np.float32)


MEASURES = ("spearman_abs", "spearman_signed", "ssim", "hog")


def measure_pair(a: np.ndarray, b: np.ndarray, name: str) -> float:
    """One of :data:`MEASURES` between two 2-D maps, NaN when either map is flat.

    Spearman |.| ranks absolute values, signed Spearman the raw maps; SSIM and HOG compare the
    maps after :func:`adebayo_normalize` (Adebayo et al. 2018, section 3).
    """
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    if name == "spearman_abs":
        return spearman(np.abs(a), np.abs(b))
    if name == "spearman_signed":
        return spearman(a, b)
    if name == "ssim":
        return float(structural_similarity(adebayo_normalize(a), adebayo_normalize(b), data_range=1.0))
    if name == "hog":
        return hog_pearson(adebayo_normalize(a), adebayo_normalize(b))
    raise ValueError(f"measure expects one of {MEASURES}, got {name!r}")


def measure_stack(maps_a: np.ndarray, maps_b: np.ndarray, name: str) -> np.ndarray:
    """:func:`measure_pair` over corresponding maps of two N-stacks (NaN where either is flat)."""
    if name not in MEASURES:
        raise ValueError(f"measure expects one of {MEASURES}, got {name!r}")
    return pairwise(maps_a, maps_b, lambda a, b: measure_pair(a, b, name))

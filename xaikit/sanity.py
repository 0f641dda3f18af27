"""Statistics of the data randomization test (Adebayo et al. 2018) over images and model seeds.

Similarities come as arrays indexed by model seed(s) and image, NaN where a map was flat
(those pairs are excluded). Intervals come from a bootstrap that resamples the images and
the model seeds of each arm together (a two-level bootstrap), so they carry the variation
between trained models as well as between images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% bootstrap interval."""

    mean: float
    lo: float
    hi: float

    def as_dict(self) -> dict:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class RandomizationResult:
    """One method and metric of the data randomization test."""

    cross: Interval        # sim(control_i, random_j), all i, j
    ceiling: Interval      # sim(control_i, control_k), i != k: the seed-to-seed ceiling
    floor: Interval        # sim(control_i(image a), control_i(image b)): different images (Arun et al.)
    diff: Interval         # cross - ceiling, paired per image
    excess: Interval       # cross - floor, paired per image
    below_ceiling: bool    # diff.hi < 0
    near_floor: bool       # excess.hi < margin
    passed: bool
    margin: float
    n_images: int
    n_random: int
    n_control: int

    def as_dict(self) -> dict:
        out = {k: getattr(self, k).as_dict() for k in ("cross", "ceiling", "floor", "diff", "excess")}
        out.update(below_ceiling=self.below_ceiling, near_floor=self.near_floor, passed=self.passed,
                   margin=self.margin, n_images=self.n_images, n_random=self.n_random,
                   n_control=self.n_control)
        return out


def _check(cross: np.ndarray, ceiling: np.ndarray, floor: np.ndarray) -> tuple[int, int, int]:
    cross, ceiling, floor = (np.asarray(a) for a in (cross, ceiling, floor))
    if cross.ndim != 3:
        raise ValueError(f"cross expects random x control x images, got shape {cross.shape}")
    r, c, n = cross.shape
    if ceiling.shape != (c, c, n):
        raise ValueError(f"ceiling expects shape {(c, c, n)}, got {ceiling.shape}")
    if floor.shape != (c, n):
        raise ValueError(f"floor expects shape {(c, n)}, got {floor.shape}")
    if c < 2:
        raise ValueError(f"the control ceiling needs >= 2 control seeds, got {c}")
    return r, c, n


def _stats(cross, ceiling, floor, rs, cs, ns):
    """Means of cross, ceiling, floor and the per-image paired differences for one resample."""
    x = np.nanmean(cross[np.ix_(rs, cs, ns)], axis=(0, 1))                 # per image
    a, b = np.meshgrid(np.arange(len(cs)), np.arange(len(cs)), indexing="ij")
    keep = cs[a.ravel()] != cs[b.ravel()]                                   # distinct seeds only
    if not keep.any():
        return (np.nan,) * 5
    pairs = ceiling[cs[a.ravel()[keep]], cs[b.ravel()[keep]]][:, ns]
    c = np.nanmean(pairs, axis=0)
    f = np.nanmean(floor[np.ix_(cs, ns)], axis=0)
    return (np.nanmean(x), np.nanmean(c), np.nanmean(f), np.nanmean(x - c), np.nanmean(x - f))


def randomization_test(cross: np.ndarray, ceiling: np.ndarray, floor: np.ndarray, *,
                       margin: float, n_boot: int = 2000, seed: int = 0) -> RandomizationResult:
    """Is sim(control, random) clearly below the control-to-control ceiling, and within
    ``margin`` of the different-image floor?

    ``cross[j, i, n]``: random seed j vs control seed i on image n; ``ceiling[i, k, n]``:
    control i vs control k (the diagonal is ignored); ``floor[i, n]``: control i's map of
    image n vs its map of another image. Pass when the upper 95% bound of cross - ceiling is
    below 0 and the upper bound of cross - floor is below ``margin`` (an equivalence bound,
    fixed before the data are seen).
    """
    cross, ceiling, floor = (np.asarray(a, np.float64) for a in (cross, ceiling, floor))
    r, c, n = _check(cross, ceiling, floor)
    if n_boot < 100:
        raise ValueError(f"n_boot expects >= 100, got {n_boot}")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():        # a resample may hold only flat (NaN) pairs
        warnings.simplefilter("ignore", RuntimeWarning)
        point = _stats(cross, ceiling, floor, np.arange(r), np.arange(c), np.arange(n))
        boots = np.array([_stats(cross, ceiling, floor, rng.integers(0, r, r), rng.integers(0, c, c),
                                 rng.integers(0, n, n)) for _ in range(n_boot)])
        lo, hi = np.nanpercentile(boots, [2.5, 97.5], axis=0)
    iv = [Interval(float(p), float(a), float(b)) for p, a, b in zip(point, lo, hi)]
    below, near = bool(iv[3].hi < 0), bool(iv[4].hi < margin)
    return RandomizationResult(*iv, below_ceiling=below, near_floor=near, passed=below and near,
                               margin=margin, n_images=n, n_random=r, n_control=c)


def bootstrap_mean(values: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of ``values[model, image]`` (NaN excluded) with a 95% interval from resampling
    models and images together."""
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2:
        raise ValueError(f"values expects models x images, got shape {v.shape}")
    m, n = v.shape
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():        # a resample may hold only flat (NaN) pairs
        warnings.simplefilter("ignore", RuntimeWarning)
        boots = [np.nanmean(v[np.ix_(rng.integers(0, m, m), rng.integers(0, n, n))])
                 for _ in range(n_boot)]
        lo, hi = np.nanpercentile(boots, [2.5, 97.5])
        return Interval(float(np.nanmean(v)), float(lo), float(hi))

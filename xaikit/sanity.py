"""Statistics of the data randomization test (Adebayo et al. 2018) over images and model seeds.

Four similarities of saliency maps, each an array over (model, model, image), NaN where a pair
is excluded (a model with itself, a flat map, an image without a matched partner, a model left
out of the analysis):

- ``cross[i, j, n]``: true-label model i vs random-label model j on image n;
- ``floor_arm[i, j, n]``: the same pair of models, true-label model i's map of image n vs
  random-label model j's map of another image of the same true class and explained target (the
  floor matched in arm: what those two models share through the spatial prior of centred chest
  films and any class template, without the image);
- ``ceiling[i, k, n]``: true-label model i vs true-label model k (k != i) on image n, what a
  second model that learned the same labels shares (the ceiling);
- ``floor[i, k, n]``: true-label model i's map of image n vs model k's map of a matched image
  (the ceiling's own floor).

The verdict is scale-free: rho = (cross - floor_arm) / (ceiling - floor_arm) places the
random-label maps between "they share with the true-label maps only what maps of two images
share" (0) and "as alike as a second true-label model" (1); cross and floor_arm compare the same
models, so rho lies near [0, 1] by construction. Without ``floor_arm`` the true-label floor takes
its place (the earlier design). The validity gate asks whether the metric reproduces a map at
all: a metric whose ceiling is not above its own floor by at least ``effect`` (the lower end of
the interval of ceiling - floor) cannot tell a second true-label model from a map of another
image and is **uninformative**; otherwise the method **passes** when the whole interval of rho
lies below a cut fixed beforehand, **fails** when it lies above, and is **inconclusive** else.

Intervals come from a two-level Bayesian bootstrap (Rubin 1981): each resample gives every
image, every true-label model and every random-label model a Dirichlet(1, ..., 1) weight.
Every model keeps a positive weight in every resample, so no resample is degenerate (a
ceiling needs two distinct models) and none is dropped, while the spread between seeds still
enters the interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

OUTCOMES = ("pass", "fail", "inconclusive", "uninformative")


@dataclass(frozen=True)
class Interval:
    """A mean with its 1 - alpha bootstrap interval."""

    mean: float
    lo: float
    hi: float

    def as_dict(self) -> dict:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class RandomizationResult:
    """One method and metric of the data randomization test."""

    cross: Interval        # true-label vs random-label models, same image
    ceiling: Interval      # true-label vs another true-label model, same image
    floor: Interval        # true-label model i, image a vs model k, image b (same class and target)
    gap: Interval          # ceiling - floor: the metric's range between its own references (the gate)
    rho: Interval          # (cross - floor_arm) / (ceiling - floor_arm)
    floor_arm: Interval    # true-label model i, image a vs random-label model j, image b (the floor of rho)
    span: Interval         # ceiling - floor_arm: rho's denominator
    effect: float          # the gate: gap.lo >= effect (and > 0)
    outcome: str           # one of OUTCOMES, at ``cut``
    cut: float
    alpha: float
    p_gap: float           # share of resamples with ceiling <= floor
    p_below: float         # share of resamples with rho >= cut (one-sided p of "rho < cut")
    p_above: float         # share of resamples with rho <= cut (one-sided p of "rho > cut")
    pass_cuts: tuple[float, float] | None   # the cuts in [0, 1] at which it passes: (rho.hi, 1], clipped
    fail_cuts: tuple[float, float] | None   # ... and fails: [0, rho.lo), clipped
    rho_by_model: tuple[float, ...]          # rho of each true-label model's comparisons
    n_images: int
    n_random: int
    n_control: int
    n_boot: int
    models_resampled: bool

    @property
    def p_value(self) -> float:
        """Two-sided p of "rho = cut" (matches the 1 - alpha interval), capped at 1."""
        return float(min(1.0, 2 * min(self.p_below, self.p_above)))

    @property
    def direction(self) -> str:
        """The side of the cut that the estimate lies on: "pass" or "fail"."""
        return "pass" if self.rho.mean < self.cut else "fail"

    def as_dict(self) -> dict:
        out = {k: getattr(self, k).as_dict() for k in ("cross", "ceiling", "floor", "gap", "rho", "floor_arm", "span")}
        out.update(outcome=self.outcome, cut=self.cut, effect=self.effect,
                   gate_passed=bool(self.outcome != "uninformative"), alpha=self.alpha, p_gap=self.p_gap,
                   p_below=self.p_below, p_above=self.p_above, p_value=self.p_value,
                   pass_cuts=list(self.pass_cuts) if self.pass_cuts else None,
                   fail_cuts=list(self.fail_cuts) if self.fail_cuts else None,
                   passes_somewhere=self.pass_cuts is not None, fails_somewhere=self.fail_cuts is not None,
                   passes_everywhere=bool(self.pass_cuts and self.pass_cuts[0] <= 0.0),
                   fails_everywhere=bool(self.fail_cuts and self.fail_cuts[1] >= 1.0),
                   pass_above=float(np.clip(self.rho.hi, 0.0, 1.0)), fail_below=float(np.clip(self.rho.lo, 0.0, 1.0)),
                   rho_by_model=list(self.rho_by_model), n_images=self.n_images,
                   n_random=self.n_random, n_control=self.n_control, n_boot=self.n_boot,
                   models_resampled=self.models_resampled)
        return out


def outcome(gap: Interval, rho: Interval, cut: float, effect: float = 0.0) -> str:
    """The verdict at ``cut``: uninformative unless the gap's interval lies above 0 and its lower
    end reaches ``effect``; then pass when rho's interval lies wholly below the cut, fail when
    wholly above, else inconclusive."""
    if not (gap.lo > 0 and gap.lo >= effect):
        return "uninformative"
    if rho.hi < cut:
        return "pass"
    if rho.lo > cut:
        return "fail"
    return "inconclusive"


def cut_sweep(gap: Interval, rho: Interval, cuts: np.ndarray, effect: float = 0.0) -> list[str]:
    """:func:`outcome` at every cut: how much the answer depends on the cut."""
    return [outcome(gap, rho, float(c), effect) for c in cuts]


def matched_partners(labels: np.ndarray, targets: np.ndarray, n_models: int, *, seed: int,
                     n_other: int | None = None) -> np.ndarray:
    """``partners[i, k, n]``: for the ordered model pair (i, k), another image of the same true
    class and the same explained target as image n, drawn uniformly with a seeded generator;
    -1 where image n has no such partner (and on the diagonal i == k). With ``n_other``, the pairs
    are (true-label model i, random-label model k < n_other), the diagonal included."""
    labels, targets = np.asarray(labels), np.asarray(targets)
    if labels.shape != targets.shape or labels.ndim != 1:
        raise ValueError(f"labels and targets expect equal 1-D shapes, got {labels.shape} and {targets.shape}")
    n = len(labels)
    rng = np.random.default_rng(seed)
    cols = n_models if n_other is None else n_other
    out = np.full((n_models, cols, n), -1, dtype=int)
    groups = {}
    for idx in range(n):
        groups.setdefault((int(labels[idx]), int(targets[idx])), []).append(idx)
    for i in range(n_models):
        for k in range(cols):
            if i == k and n_other is None:
                continue
            for members in groups.values():
                if len(members) < 2:
                    continue
                m = np.asarray(members)
                for a in m:
                    others = m[m != a]
                    out[i, k, a] = others[rng.integers(0, len(others))]
    return out


def arm_similarities(controls: list, randoms: list, measure, partners: np.ndarray, *,
                     exclude_same_index: bool, partners_arm: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cross, ceiling, floor, floor_arm) arrays of the module docstring from map stacks.

    ``measure(a, b)`` compares two stacks image by image (NaN where a map is flat).
    ``exclude_same_index`` leaves out cross pairs (i, i): random-i and control-i share their
    training subset, which the ceiling's pairs (i, k != i) never do, so the cross compares only
    models of different subsets as the ceiling does; floor_arm takes the cross's pairs, with the
    random-label model's map of image ``partners_arm[i, j, n]`` (all NaN without it)."""
    c, r, n = len(controls), len(randoms), len(controls[0])
    if partners.shape != (c, c, n):
        raise ValueError(f"partners expects shape {(c, c, n)}, got {partners.shape}")
    if partners_arm is not None and partners_arm.shape != (c, r, n):
        raise ValueError(f"partners_arm expects shape {(c, r, n)}, got {partners_arm.shape}")
    cross = np.full((c, r, n), np.nan)
    floor_arm = np.full((c, r, n), np.nan)
    ceiling = np.full((c, c, n), np.nan)
    floor = np.full((c, c, n), np.nan)
    for i in range(c):
        for j in range(r):
            if not (exclude_same_index and i == j):
                cross[i, j] = measure(controls[i], randoms[j])
                has = partners_arm[i, j] >= 0 if partners_arm is not None else np.zeros(n, bool)
                if has.any():
                    floor_arm[i, j, has] = measure(controls[i][has], randoms[j][partners_arm[i, j, has]])
        for k in range(c):
            if k == i:
                continue
            ceiling[i, k] = measure(controls[i], controls[k])
            has = partners[i, k] >= 0
            if has.any():
                floor[i, k, has] = measure(controls[i][has], controls[k][partners[i, k, has]])
    return cross, ceiling, floor, floor_arm


def _weighted_mean(q: np.ndarray, wa: np.ndarray, wb: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """Mean of ``q[a, b, n]`` over its non-NaN entries with weight ``wa[t, a] wb[t, b] wn[t, n]``,
    for each resample t."""
    valid = ~np.isnan(q)
    num = np.einsum("ta,tb,tn,abn->t", wa, wb, wn, np.where(valid, q, 0.0), optimize=True)
    den = np.einsum("ta,tb,tn,abn->t", wa, wb, wn, valid.astype(np.float64), optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _check(cross: np.ndarray, ceiling: np.ndarray, floor: np.ndarray) -> tuple[int, int, int]:
    if cross.ndim != 3:
        raise ValueError(f"cross expects true-label x random-label models x images, got shape {cross.shape}")
    c, r, n = cross.shape
    for name, a in (("ceiling", ceiling), ("floor", floor)):
        if a.shape != (c, c, n):
            raise ValueError(f"{name} expects shape {(c, c, n)}, got {a.shape}")
    if c < 2:
        raise ValueError(f"the ceiling needs >= 2 true-label models, got {c}")
    if n < 2:
        raise ValueError(f"the matched floor needs >= 2 images, got {n}")
    return c, r, n


def _rho_by_model(cross, ceiling, floor_arm) -> tuple[float, ...]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(cross.shape[0]):
            x, c, f = np.nanmean(cross[i]), np.nanmean(ceiling[i]), np.nanmean(floor_arm[i])
            out.append(float((x - f) / (c - f)) if c != f else float("nan"))
    return tuple(out)


def _statistics(arrays: dict, wc: np.ndarray, wr: np.ndarray, wn: np.ndarray, arm: bool) -> tuple[dict, dict]:
    """(point, resampled) values of cross, ceiling, floor, floor_arm, gap, span and rho."""
    c, r, n = arrays["cross"].shape
    ones = (np.ones((1, c)), np.ones((1, r)), np.ones((1, n)))
    stats = {}
    for name, wb, ub in (("cross", wr, ones[1]), ("ceiling", wc, ones[0]), ("floor", wc, ones[0]),
                         ("floor_arm", wr, ones[1])):
        if name != "floor_arm" or arm:
            q = arrays[name]
            stats[name] = (float(_weighted_mean(q, ones[0], ub, ones[2])[0]), _weighted_mean(q, wc, wb, wn))
    if not arm:
        stats["floor_arm"] = stats["floor"]
    point = {k: v[0] for k, v in stats.items()}
    boots = {k: v[1] for k, v in stats.items()}
    for d in (point, boots):
        d["gap"] = d["ceiling"] - d["floor"]
        d["span"] = d["ceiling"] - d["floor_arm"]
    with np.errstate(invalid="ignore", divide="ignore"):
        point["rho"] = (point["cross"] - point["floor_arm"]) / point["span"] if point["span"] != 0 else np.nan
        boots["rho"] = (boots["cross"] - boots["floor_arm"]) / boots["span"]
    return point, boots


def randomization_test(cross: np.ndarray, ceiling: np.ndarray, floor: np.ndarray, *, cut: float,
                       alpha: float = 0.05, n_boot: int = 2000, seed: int = 0, resample_models: bool = True,
                       floor_arm: np.ndarray | None = None, effect: float = 0.0) -> RandomizationResult:
    """The verdict of one method and metric (see the module docstring).

    ``floor_arm`` (shaped like ``cross``) is rho's floor; without it the true-label ``floor`` is.
    ``effect``: the gate's minimum for the lower end of the interval of ceiling - floor.
    ``resample_models=False`` keeps the models' weights equal (for designs with one model per
    arm, where the spread between models cannot be estimated; intervals are then over images
    only). The diagonals of ``ceiling`` and ``floor`` (a model with itself) are ignored.
    """
    cross, ceiling, floor = (np.asarray(a, np.float64).copy() for a in (cross, ceiling, floor))
    c, r, n = _check(cross, ceiling, floor)
    arm = floor_arm is not None
    floor_arm = np.asarray(floor_arm, np.float64) if arm else floor
    if arm and floor_arm.shape != cross.shape:
        raise ValueError(f"floor_arm expects the shape of cross {cross.shape}, got {floor_arm.shape}")
    if n_boot < 100:
        raise ValueError(f"n_boot expects >= 100, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha expects a value in (0, 1), got {alpha}")
    if effect < 0:
        raise ValueError(f"effect expects >= 0, got {effect}")
    eye = np.eye(c, dtype=bool)
    ceiling[eye] = np.nan
    floor[eye] = np.nan
    rng = np.random.default_rng(seed)

    def weights(k: int) -> np.ndarray:
        if resample_models:
            return rng.dirichlet(np.ones(k), size=n_boot)
        return np.full((n_boot, k), 1.0 / k)

    point, boots = _statistics({"cross": cross, "ceiling": ceiling, "floor": floor, "floor_arm": floor_arm},
                               weights(c), weights(r), rng.dirichlet(np.ones(n), size=n_boot), arm)
    q = (100 * alpha / 2, 100 * (1 - alpha / 2))
    iv = {}
    empty = [k for k in ("cross", "ceiling", "floor", "floor_arm") if np.isnan(boots[k]).any()]
    for k in ("cross", "ceiling", "floor", "floor_arm", "gap", "span", "rho"):
        if empty:       # a comparison with no valid pair (every map flat, e.g. dead Grad-CAM maps)
            iv[k] = Interval(float("nan"), float("nan"), float("nan"))
            continue
        lo, hi = np.percentile(boots[k], q)
        iv[k] = Interval(float(point[k]), float(lo), float(hi))
    # no valid pair in a comparison: the measure cannot tell its references apart -> uninformative
    verdict = "uninformative" if empty else outcome(iv["gap"], iv["rho"], cut, effect)
    rho = iv["rho"]
    informative = verdict != "uninformative"
    pass_cuts = (max(rho.hi, 0.0), 1.0) if informative and rho.hi < 1.0 else None
    fail_cuts = (0.0, min(rho.lo, 1.0)) if informative and rho.lo > 0.0 else None
    return RandomizationResult(
        cross=iv["cross"], ceiling=iv["ceiling"], floor=iv["floor"], gap=iv["gap"], rho=rho,
        floor_arm=iv["floor_arm"], span=iv["span"], effect=float(effect),
        outcome=verdict, cut=cut, alpha=alpha, p_gap=float(np.mean(boots["gap"] <= 0)),
        p_below=float(np.mean(boots["rho"] >= cut)), p_above=float(np.mean(boots["rho"] <= cut)),
        pass_cuts=pass_cuts, fail_cuts=fail_cuts, rho_by_model=_rho_by_model(cross, ceiling, floor_arm),
        n_images=n, n_random=r, n_control=c, n_boot=n_boot, models_resampled=resample_models)


def holm(pvalues) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, in the input order."""
    p = np.asarray(pvalues, np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def adjusted_outcome(result: RandomizationResult, p_adjusted: float) -> str:
    """A verdict after a multiplicity adjustment: uninformative stays so; otherwise the side
    of the cut when the adjusted p is below alpha, else inconclusive."""
    if result.outcome == "uninformative":
        return "uninformative"
    return result.direction if p_adjusted < result.alpha else "inconclusive"


def bootstrap_mean(values: np.ndarray, *, n_boot: int = 2000, seed: int = 0,
                   alpha: float = 0.05) -> Interval:
    """Mean of ``values[model, image]`` (NaN excluded) with a 1 - alpha interval from a
    Bayesian bootstrap over models and images (every model keeps a positive weight)."""
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2:
        raise ValueError(f"values expects models x images, got shape {v.shape}")
    if np.isnan(v).all():         # every map flat: nothing to average (the caller says "cannot tell")
        return Interval(float("nan"), float("nan"), float("nan"))
    m, n = v.shape
    rng = np.random.default_rng(seed)
    wm = rng.dirichlet(np.ones(m), size=n_boot) if m > 1 else np.ones((n_boot, 1))
    wn = rng.dirichlet(np.ones(n), size=n_boot)
    boots = _weighted_mean(v[:, None, :], wm, np.ones((n_boot, 1)), wn)
    lo, hi = np.nanpercentile(boots, (100 * alpha / 2, 100 * (1 - alpha / 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Interval(float(np.nanmean(v)), float(lo), float(hi))


TEMPLATE_WORDS = ("no_template", "cannot_tell", "method", "classifier", "unclear")


def template_verdict(main: Interval, learned: Interval, difference: Interval, cut: float) -> str:
    """Whether a model's maps of two different images (same class and target) form a class template, and whose it is.

    ``main``: the model's similarity of its maps of two matched images; ``learned``: the same measure for models
    that learned nothing (random labels), ``difference``: main - learned (NaN without such models); ``cut``: the
    similarity called high. One of :data:`TEMPLATE_WORDS`: "no_template" (``main`` wholly below ``cut``),
    "cannot_tell" (``main``'s interval contains ``cut``, or no learned-nothing reference), "method" (a template that
    the learned-nothing models reach too, interval wholly at or above ``cut``, and that ``main`` does not exceed:
    a property of the method and architecture, not of what the classifier learned), "classifier" (a template above
    the learned-nothing models': ``difference`` wholly above 0), "unclear" (a template, neither of the two)."""
    if not 0.0 < cut <= 1.0:
        raise ValueError(f"cut expects a similarity in (0, 1], got {cut}")
    if np.isnan(main.mean) or main.hi < cut:
        return "no_template" if not np.isnan(main.mean) else "cannot_tell"
    if main.lo < cut or np.isnan(difference.mean):
        return "cannot_tell"
    if difference.lo > 0:
        return "classifier"
    return "method" if learned.lo >= cut else "unclear"

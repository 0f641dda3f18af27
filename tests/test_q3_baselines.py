"""Q3.4 (report.q3_ig): the baseline verdict at the report's comparison resolution, without the
baselines whose completeness gap misses the tolerance."""

from types import SimpleNamespace

import numpy as np

from report.preflight import read_config
from report.q3_ig import _baseline_numbers, baseline_spearman
from xaikit import baselines as xb
from xaikit import similarity


def _maps(rng, n=12, size=32, noise=3.0):
    """|IG|-like maps per baseline: one smooth pattern per image shared by every baseline, plus pixel noise
    of each baseline's own. Pooled, the baselines agree; pixel by pixel, mostly noise."""
    yy, xx = np.mgrid[:size, :size] / size
    shared = [np.exp(-((yy - rng.uniform(0.2, 0.8)) ** 2 + (xx - rng.uniform(0.2, 0.8)) ** 2) / 0.05) for _ in range(n)]
    return {b: np.abs(np.stack(shared) + noise * rng.random((n, size, size)) * np.stack(shared).max())
            for b in xb.BASELINES}


def _numbers(maps, cells, gaps):
    ctx = SimpleNamespace(cfg=read_config(None, [f"attribution.comparison_cells={cells}"], None))
    st = {"n_boot": 200, "seed": 0, "level": 0.95, "baseline_sensitive": 0.5, "cells": cells}
    rows = [{"baseline": b, "P(PNEUMONIA) of baseline": 0.5, "F(x) - F(baseline)": 1.0, "median gap": gaps.get(b, 0.0),
             "max gap": gaps.get(b, 0.0)} for b in xb.BASELINES]
    k = len(xb.BASELINES)
    per = {"cells": np.ones((k, k, 12)), "pixels": np.ones((k, k, 12)), "ssim": np.ones((k, k, 12))}
    for i, a in enumerate(xb.BASELINES):
        for j, b in enumerate(xb.BASELINES):
            if i != j:
                per["cells"][i, j] = similarity.pairwise(similarity.pool(maps[a], cells), similarity.pool(maps[b], cells),
                                                         similarity.spearman)
                per["pixels"][i, j] = similarity.pairwise(maps[a], maps[b], similarity.spearman)
    n = {"threshold": 0.5}
    _baseline_numbers(ctx, n, rows, per, maps, st, 12)
    return n


def test_the_verdict_is_read_at_the_comparison_resolution():
    # catches: the headline read at pixel level (Q3.4 said "strongly dependent" at 0.34 while the same maps
    # agree at 0.61 at the 16x16 cells Q3.3 compares them at, #32), or the config key not reaching it
    maps = _maps(np.random.default_rng(0))
    coarse, fine = _numbers(maps, 4, {}), _numbers(maps, 32, {})
    assert coarse["baseline_cells"] == 4 and coarse["baseline_spearman"]["lo"] > 0.5
    assert coarse["baseline_dependence"] == "only mildly"
    assert fine["baseline_dependence"] == "strongly"                     # 32 cells of a 32 px map: pixels
    assert coarse["baseline_spearman_pixels"]["value"] == fine["baseline_spearman_pixels"]["value"]
    np.testing.assert_allclose(baseline_spearman(maps, 0), baseline_spearman(maps, 32))


def test_baselines_that_miss_the_tolerance_are_left_out_and_listed():
    # catches: a degenerate baseline (black's completeness gap at 64 steps) mixed into the headline, or left
    # out silently
    rng = np.random.default_rng(1)
    maps = _maps(rng)
    maps["black"] = rng.random(maps["black"].shape)                      # unrelated maps
    with_black, without = _numbers(maps, 4, {}), _numbers(maps, 4, {"black": 0.2})
    assert without["baselines_left_out"] == ["black"] and "black" not in without["baselines_kept"]
    assert without["baseline_spearman"]["value"] > with_black["baseline_spearman"]["value"]
    assert without["baseline_spearman_all"]["value"] == with_black["baseline_spearman"]["value"]
    none = _numbers(maps, 4, {b: 0.2 for b in xb.BASELINES[1:]})
    assert none["baseline_dependence"] == "cannot tell" and not none["baseline_dependence_told"]

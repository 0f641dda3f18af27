"""The measures of Q3/Q4 (report/measures.py): verdicts follow their intervals and cut-offs."""

import numpy as np
import pytest

from report import measures
from xaikit import intervals

S = {"lung_margin": 0.2, "border_frac": 0.1, "consistency_high": 0.5, "consistency_moderate": 0.2,
     "agree": 0.5, "baseline_sensitive": 0.5, "alpha": 0.05, "level": 0.95, "n_boot": 300, "seed": 0,
     "dice_target": 0.8, "cells": 16}


def setup(n=12, size=20):
    masks = np.zeros((n, size, size), bool)
    masks[:, 5:15, 3:8] = masks[:, 5:15, 12:17] = True
    labels = np.arange(n) % 2
    rng = np.random.default_rng(0)
    return masks, labels, rng


def test_region_verdicts_follow_the_interval():
    """Catches: a verdict from the point value instead of the interval, the cut-off 1 + margin
    replaced by 1, border verdict direction swapped, vs-input difference with the wrong sign."""
    masks, labels, rng = setup()
    lungs = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)      # all mass in the lungs
    flat = rng.uniform(size=masks.shape)                                              # mass where area is
    nulls = {"input": flat, "random": rng.uniform(size=masks.shape)}
    r = measures.region_numbers(lungs, masks, labels, nulls, S)
    area = masks[0].mean()
    assert r["all"]["lung_area"] == pytest.approx(area)
    assert r["all"]["map"]["lung_ratio"]["value"] == pytest.approx(
        np.mean([m[k].sum() / m.sum() for m, k in zip(lungs, masks)]) / area)
    assert r["lung_verdict"] == "concentrated in the lung fields"
    assert r["border_verdict"] == "under-represented in the image border"
    assert r["beyond_input"] == "more" and r["all"]["vs_input"]["lo"] > 0
    assert r["lung_cut"] == pytest.approx(1.2)
    r2 = measures.region_numbers(flat, masks, labels, {"input": lungs}, S)
    assert r2["lung_verdict"] == "not concentrated in the lung fields" and r2["beyond_input"] == "less"
    # a cut-off at the point value itself lies inside the interval: no verdict either way
    at_point = {**S, "lung_margin": r2["NORMAL"]["map"]["lung_ratio"]["value"] - 1}
    r3 = measures.region_numbers(flat, masks, labels, {}, at_point)
    assert "interval contains the cut-off" in r3["NORMAL"]["lung_word"]
    assert "vs_input" not in r3["all"] and "beyond_input" not in r3


def test_consistency_levels_and_class_specificity():
    """Catches: levels compared with the wrong cut-off, class_specific from p alone."""
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 8)
    proto = rng.uniform(size=(2, 16, 16))
    maps = proto[labels] + rng.normal(0, 0.05, (16, 16, 16))
    c = measures.consistency_numbers(maps, {"random": rng.uniform(size=(16, 16, 16))}, S,
                                     labels=labels, targets=labels)
    assert c["level"] == "high" and c["class_specific"] and c["p_value"] < 0.05
    assert c["nulls"]["random"]["level"] == "low" and not c["nulls"]["random"]["class_specific"]
    assert "vs_input" not in c
    high = {**S, "consistency_high": 1.01, "consistency_moderate": 0.99}
    assert measures.consistency_numbers(maps, {}, high, labels=labels, targets=labels)["level"] == "low"
    at_cut = {**S, "consistency_high": c["within"]["NORMAL"]["lo"]}   # the cut-off itself counts as reached
    assert measures.consistency_numbers(maps, {}, at_cut, labels=labels, targets=labels)["levels"]["NORMAL"] == "high"


def test_winner_by_interval():
    """Catches: deletion scored as higher-is-better, a winner declared when the interval has 0."""
    assert measures.winner({"lo": 0.1, "hi": 0.2}, "IG", "CAM", True) == "IG"
    assert measures.winner({"lo": 0.1, "hi": 0.2}, "IG", "CAM", False) == "CAM"
    assert measures.winner({"lo": -0.2, "hi": -0.1}, "IG", "CAM", True) == "CAM"
    assert measures.winner({"lo": -0.2, "hi": -0.1}, "IG", "CAM", False) == "IG"
    assert measures.winner({"lo": -0.1, "hi": 0.1}, "IG", "CAM", True) is None


def test_random_maps_resolution_and_seed():
    """Catches: the cell size ignored (a pixel-level null for a coarse method), an unseeded draw."""
    coarse = measures.random_maps((2, 16, 16), 4, 0)
    fine = measures.random_maps((2, 16, 16), 0, 0)
    rough = lambda m: np.abs(np.diff(m, axis=1)).mean()
    assert coarse.shape == fine.shape == (2, 16, 16) and rough(coarse) < rough(fine) / 2
    np.testing.assert_array_equal(measures.random_maps((2, 16, 16), 4, 0), coarse)


def test_mask_numbers_per_class():
    masks, labels, _ = setup(4)
    fb = np.array([True, False, False, False])
    m = measures.mask_numbers(masks, fb, labels)
    assert m["NORMAL"]["fallback_rate"] == 0.5 and m["PNEUMONIA"]["fallbacks"] == 0
    assert m["all"]["n"] == 4 and m["all"]["area"] == pytest.approx(masks.mean())


def test_atlas_covers_a_plausible_lung_share():
    """The committed development lung fields make an atlas of 15-40% of the image, two lungs."""
    from skimage import measure
    a = measures.atlas(64)
    assert 0.15 < a.mean() < 0.4 and measure.label(a).max() == 2


def test_interval_helpers():
    """Catches: an interval that does not contain its estimate, pairing lost in the bootstrap."""
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 1.0, 50)
    e = intervals.mean_ci(x, n_boot=500, seed=1)
    assert e.lo < e.value < e.hi and e.value == pytest.approx(x.mean())
    y = x + 0.1 + rng.normal(0, 0.01, 50)                     # paired: the difference is tight
    d = intervals.bootstrap(lambda a, b: np.mean(b - a), x, y, n_boot=500, seed=1)
    assert 0.09 < d.lo < d.hi < 0.11
    with pytest.raises(ValueError, match="equal lengths"):
        intervals.bootstrap(np.mean, x, y[:10])


def test_lung_masks_are_the_atlas_for_every_image():
    """Catches: the atlas drawn at the wrong size, flags of another channel or image count."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 32, 32, 1)).astype(np.float32)
    masks, fallback = measures.lung_masks(images)
    assert masks.shape == (3, 32, 32) and fallback.shape == (3,) and fallback.dtype == bool
    assert all(np.array_equal(m, measures.atlas(32)) for m in masks)


def test_hand_mask_dice_on_the_validation_images():
    """Dice of the atlas against the hand-drawn test lung fields, recomputed here image by image.
    Catches: per-class means over the wrong images, the prior and atlas swapped."""
    from types import SimpleNamespace

    from xaikit import data, regions
    from xaikit.pipeline import to_float

    from .conftest import SHARED
    if not SHARED.exists():
        pytest.skip(f"shared dataset not found at {SHARED} (set XAIKIT_SHARED_DATA)")
    val = measures.hand_drawn()["validation"]
    names = sorted(val)[:3] + sorted(val)[-3:]                  # 3 NORMAL, 3 PNEUMONIA
    recs = tuple(data.ImageRecord(relpath=n, split="test", label=int("PNEUMONIA" in n), nbytes=0, sha1="x")
                 for n in names)
    ctx = SimpleNamespace(listing=data.Listing(str(SHARED), recs), cfg={"data.image_size": 64})
    out = measures.hand_mask_dice(ctx, S)
    at = measures.atlas(64)
    mine = {n: regions.dice(at, regions.polygon_mask(list(val[n].values()), (64, 64))) for n in names}
    assert out["n"] == 6
    assert out["atlas"]["NORMAL"] == pytest.approx(np.mean([mine[n] for n in names[:3]]))
    assert out["atlas"]["PNEUMONIA"] == pytest.approx(np.mean([mine[n] for n in names[3:]]))
    assert out["beats_prior"] == (out["atlas_vs_prior"]["lo"] > 0)
    # the target is verdicts.dice_target (here S's), judged by the interval: a target below the interval
    # is met (catches a typed 0.8 in place of the setting)
    low = measures.hand_mask_dice(ctx, {**S, "dice_target": out["atlas"]["mean"]["lo"] - 0.01})
    assert out["target"] == S["dice_target"] and low["meets_target"] and low["target_verdict"] == "meets"
    seg = [regions.segment_lungs(to_float(im[None])[0, ..., 0]).mask
           for im in data.decode_listing(ctx.listing, 64, recs).images]
    assert out["segmentation"]["mean"]["value"] == pytest.approx(
        np.mean([regions.dice(m, regions.polygon_mask(list(val[n].values()), (64, 64))) for m, n in zip(seg, names)]))


def test_spatial_prior_leaves_the_image_out():
    """Catches: the prior including the image itself, averaging across classes, or weighting images
    by their mass instead of equally."""
    rng = np.random.default_rng(3)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    maps = rng.uniform(size=(8, 6, 6)) * rng.uniform(1, 100, size=(8, 1, 1))
    prior = measures.prior_maps(maps, labels)
    unit = maps / maps.sum((1, 2), keepdims=True)
    for i in range(8):
        others = [j for j in range(8) if j != i and labels[j] == labels[i]]
        np.testing.assert_allclose(prior[i], unit[others].mean(0))
    changed = maps.copy()
    changed[0] = 50 * rng.uniform(size=(6, 6))          # the image's own map does not move its prior
    np.testing.assert_allclose(measures.prior_maps(changed, labels)[0], prior[0])
    assert not np.allclose(measures.prior_maps(changed, labels)[1], prior[1])
    assert np.all(measures.prior_maps(maps[:3], np.array([0, 0, 1]))[2] == 0)    # alone in its class


def test_spatial_prior_needs_a_mask_per_image():
    """With one mask for every image the prior comparison is zero by construction and says
    "cannot tell"; with per-image masks a map that follows each image's own lungs beats the prior.
    Catches: a prior verdict stated on a shared mask, or the map - prior difference with the wrong sign."""
    masks, labels, rng = setup()
    maps = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    r = measures.region_numbers(maps, masks, labels, {}, S)
    assert r["shared_mask"] and r["NORMAL"]["vs_prior"]["value"] == pytest.approx(0, abs=1e-8)
    assert r["beyond_prior"] == measures.NOT_SHARED and r["answer"] == "Partly"
    own = np.zeros_like(masks)
    for i in range(len(own)):                            # lungs that move from image to image
        own[i, 2 + i % 6:10 + i % 6, 2 + (i * 5) % 9:8 + (i * 5) % 9] = True
    follow = np.where(own, 1.0, 0.0) + 0.01 * rng.uniform(size=own.shape)
    r2 = measures.region_numbers(follow, own, labels, {}, S)
    assert not r2["shared_mask"] and r2["prior_agree"] and r2["beyond_prior"] == "more"
    assert r2["NORMAL"]["vs_prior"]["lo"] > 0 and r2["answer"] == "Yes"


def test_region_verdicts_per_class_and_pooled_only_when_they_agree():
    """Catches: a pooled verdict stated when the classes disagree, classes swapped, and the answer
    word not following the class words."""
    masks, labels, rng = setup()
    lungs = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    flat = rng.uniform(size=masks.shape)
    mixed = np.where((labels == 0)[:, None, None], lungs, flat)     # NORMAL in the lungs, PNEUMONIA not
    r = measures.region_numbers(mixed, masks, labels, {"input": flat}, S)
    assert r["NORMAL"]["lung_word"] == "concentrated in the lung fields"
    assert r["PNEUMONIA"]["lung_word"] == "not concentrated in the lung fields"
    assert not r["lung_agree"]
    assert r["lung_verdict"] == ("concentrated in the lung fields on NORMAL images and "
                                 "not concentrated in the lung fields on PNEUMONIA images")
    assert r["NORMAL"]["beyond_input"] == "more" and not r["input_agree"]
    assert r["answer"] == "Partly"
    both = measures.region_numbers(lungs, masks, labels, {"input": flat}, S)
    assert both["lung_agree"] and both["lung_verdict"] == "concentrated in the lung fields"
    assert both["beyond_input"] == "more"
    assert measures.region_numbers(flat, masks, labels, {}, S)["answer"] == "No"
    assert measures.verdicts_hold(both, both) and not measures.verdicts_hold(both, r)
    assert measures.verdict_change(both, both) == "hold" and measures.verdict_change(both, r) == "change"
    unsure = {c: dict(both[c]) for c in ("NORMAL", "PNEUMONIA")}
    unsure["PNEUMONIA"]["lung_word"] = measures.UNDECIDED[0]       # decided -> undecided: less certain
    assert measures.verdict_change(both, unsure) == "hold but are less certain"
    assert measures.verdict_change(unsure, both) == "change"      # undecided -> decided is a change


@pytest.mark.parametrize("lo,hi,word", [(0.81, 0.9, "meets"), (0.7, 0.79, "misses"),
                                        (0.786, 0.839, "cannot tell (the interval contains the target)")])
def test_dice_target_judged_by_the_interval(lo, hi, word):
    """Catches: the target judged by the point value (0.81 would "meet" in the third case)."""
    assert measures.target_word({"value": 0.81, "lo": lo, "hi": hi}, 0.8) == word   # verdicts.dice_target
    assert measures.target_word({"value": 0.8, "lo": 0.8, "hi": 0.9}, 0.8) == "meets"    # at the target counts


def test_negative_difference_counted_per_target_and_verdicts_recomputed():
    """Catches: counting by true label instead of explained target, the sign of F(x) - F(b) flipped,
    the minimum taken over the wrong class, and a verdict comparison claimed with too few images left."""
    masks, labels, rng = setup(n=16)
    maps = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    targets = np.array([0, 1] * 4 + [1, 1, 0, 0] * 2)
    delta = np.full(16, 2.0)
    delta[[1, 3, 8]] = [-0.5, -3.0, -1.0]                 # three PNEUMONIA targets, minimum -3
    full = measures.region_numbers(maps, masks, labels, {}, S)
    r = measures.negative_delta_numbers(delta, targets, maps, masks, labels, {}, S, full)
    assert (r["PNEUMONIA"]["negative"], r["NORMAL"]["negative"], r["negative"]) == (3, 0, 3)
    assert r["PNEUMONIA"]["n"] == int(np.sum(targets == 1)) and r["PNEUMONIA"]["min"] == -3.0
    assert r["verdicts_hold"] is True and r["verdicts"] == "hold" and r["regions"]["PNEUMONIA"]["n"] == int(np.sum(labels[delta >= 0] == 1))
    few = np.where(labels == 1, -1.0, 1.0)               # every PNEUMONIA image dropped: cannot compare
    assert measures.negative_delta_numbers(few, targets, maps, masks, labels, {}, S, full)["verdicts_hold"] is None
    none = measures.negative_delta_numbers(np.ones(16), targets, maps, masks, labels, {}, S, full)
    assert none["negative"] == 0 and none["verdicts_hold"] is True


def test_upsampling_numbers_compare_centre_and_corner_alignment():
    """Catches: the two upsamplings swapped or compared on different maps: one cell at the corner of
    a 4 x 4 grid keeps more of its mass in the border zone when stretched to the corner."""
    grid = np.zeros((6, 4, 4))
    grid[:, 0, 0] = 1.0
    grid[:, 1:3, 1:3] = 0.2
    from xaikit.regions import upsample
    masks = np.zeros((6, 20, 20), bool)
    masks[:, 5:15, 5:15] = True
    r = measures.upsampling_numbers(grid, upsample(grid, (20, 20)), masks, S)
    assert r["grid"] == 4 and "centre-aligned" in r["rule"]
    assert r["border_share"]["corner"] != r["border_share"]["centre"]
    assert r["border_share"]["centre_minus_corner"]["value"] == pytest.approx(
        r["border_share"]["centre"] - r["border_share"]["corner"])


def test_a_map_beyond_what_a_model_that_learned_nothing_shows_answers_yes():
    """The main model's maps sit in the lungs, the learned-nothing reference's (the random-label models' mean map)
    spread over the image: with one mask for every image, "Yes". Catches: region_answer still demanding
    ``beyond_prior == "more"`` with a shared mask (the one-line bug that forced "Partly": the prior's difference is
    zero by construction), or "learned" left out of the paired comparison loop (no ``beyond_learned`` to decide)."""
    masks, labels, rng = setup()
    lungs = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    nothing = rng.uniform(size=masks.shape)                 # a model that learned nothing: mass where area is
    r = measures.region_numbers(lungs, masks, labels, {"input": nothing, "learned": nothing}, S)
    assert r["shared_mask"] and r["has_learned"] and r["beyond_prior"] == measures.NOT_SHARED
    assert r["learned_agree"] and r["beyond_learned"] == "more" and r["NORMAL"]["vs_learned"]["lo"] > 0
    assert r["NORMAL"]["learned"]["lung_ratio"]["hi"] < r["NORMAL"]["map"]["lung_ratio"]["lo"]
    assert r["answer"] == "Yes"
    assert measures.region_answer({**r, "shared_mask": False}) == "Partly"     # a per-image mask: the prior counts


def test_a_map_no_different_from_a_model_that_learned_nothing_is_not_yes():
    """The same lung maps, and a model that learned nothing that shows the same maps: not "Yes" (every other word
    would allow it). Catches: region_answer ignoring ``beyond_learned`` (the one-line bug of dropping
    ``w.get("beyond_learned", "more") == "more"``), which would call a map the architecture makes anyway sensible."""
    masks, labels, rng = setup()
    lungs = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    r = measures.region_numbers(lungs, masks, labels, {"input": rng.uniform(size=masks.shape), "learned": lungs}, S)
    assert r["beyond_input"] == "more" and r["lung_verdict"] == "concentrated in the lung fields"
    assert r["beyond_learned"] == "no more and no less" and r["NORMAL"]["vs_learned"]["value"] == pytest.approx(0)
    assert r["answer"] == "Partly"
    without = measures.region_numbers(lungs, masks, labels, {"input": rng.uniform(size=masks.shape)}, S)
    assert not without["has_learned"] and "beyond_learned" not in without and without["answer"] == "Partly"
    changed = {c: dict(r[c]) for c in ("NORMAL", "PNEUMONIA")}
    changed["NORMAL"]["beyond_learned"] = "more"
    assert not measures.verdicts_hold(r, changed)        # the learned-nothing word is one of the region verdicts


def test_unit_mass_weighs_every_map_the_same():
    """Catches: the learned-nothing mean weighted by each model's scale (a model with larger gradients would decide
    the reference alone), or a map without mass divided by zero."""
    maps = np.stack([np.ones((4, 4)), 10 * np.eye(4), np.zeros((4, 4))])[..., None]
    u = measures.unit_mass(maps)
    np.testing.assert_allclose(u.reshape(3, -1).sum(1), [1, 1, 0])
    np.testing.assert_allclose(u[1], np.eye(4) / 4)

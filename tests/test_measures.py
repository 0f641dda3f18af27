"""The measures of Q3/Q4 (report/measures.py): verdicts follow their intervals and cut-offs."""

import numpy as np
import pytest

from report import measures
from xaikit import intervals

S = {"lung_margin": 0.2, "border_frac": 0.1, "consistency_high": 0.5, "consistency_moderate": 0.2,
     "agree": 0.5, "baseline_sensitive": 0.5, "alpha": 0.05, "level": 0.95, "n_boot": 300, "seed": 0}


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
    at_point = {**S, "lung_margin": r2["all"]["map"]["lung_ratio"]["value"] - 1}
    r3 = measures.region_numbers(flat, masks, labels, {}, at_point)
    assert "interval contains the cut-off" in r3["lung_verdict"]
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
    seg = [regions.segment_lungs(to_float(im[None])[0, ..., 0]).mask
           for im in data.decode_listing(ctx.listing, 64, recs).images]
    assert out["segmentation"]["mean"]["value"] == pytest.approx(
        np.mean([regions.dice(m, regions.polygon_mask(list(val[n].values()), (64, 64))) for m, n in zip(seg, names)]))

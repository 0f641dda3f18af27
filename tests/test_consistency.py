"""Consistency of maps (Q3.3 / Q4.3): levels by interval, grouping by the explained target, and
the paired test of map minus input alone (xaikit/similarity.py, report/measures.py)."""

import numpy as np
import pytest

from report import measures
from xaikit import similarity

S = {"consistency_high": 0.5, "consistency_moderate": 0.2, "alpha": 0.05, "level": 0.95, "n_boot": 300, "seed": 0,
     "cells": 16}


def anatomy(n=24, size=16, seed=0, noise=0.3):
    """Maps sharing one 'anatomy' plus per-image noise, no class structure; groups 0/1 alternate."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(size=(size, size))
    return base + rng.normal(0, noise, (n, size, size)), np.arange(n) % 2, rng


@pytest.mark.parametrize("lo,hi,word", [
    (0.6, 0.8, "high"), (0.5, 0.7, "high"),                        # the cut-off itself counts as reached
    (0.3, 0.45, "moderate"), (0.2, 0.49, "moderate"),
    (0.05, 0.15, "low"), (-0.1, 0.19, "low"),
    (0.15, 0.3, "between low and moderate"), (0.4, 0.6, "between moderate and high"),
    (0.3, 0.5, "between moderate and high"),                       # hi on the cut: the interval contains it
    (0.1, 0.7, "between low and high")])
def test_level_word_reads_the_whole_interval(lo, hi, word):
    """Catches: a level from the point value or from one end only (lo alone would call (0.4, 0.6)
    moderate, hi alone high), a strict >= swapped for >, the straddling case folded into a level."""
    got = measures.level_word({"value": (lo + hi) / 2, "lo": lo, "hi": hi}, 0.5, 0.2)
    assert got.startswith(word)
    assert ("interval contains the cut-off" in got) == word.startswith("between")


def test_levels_per_group_and_pooled_only_when_they_agree():
    """Catches: a pooled level averaged over groups that disagree (0.23 and 0.72 called moderate)."""
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 10)
    proto = rng.uniform(size=(16, 16))
    maps = np.where(labels[:, None, None] == 0, proto + rng.normal(0, 0.05, (20, 16, 16)),
                    rng.uniform(size=(20, 16, 16)))          # group 0 alike, group 1 noise
    c = measures.consistency_numbers(maps, {}, S, labels=labels, targets=labels)
    assert c["levels"] == {"NORMAL": "high", "PNEUMONIA": "low"} and not c["levels_agree"]
    assert c["level"] == "high for NORMAL targets and low for PNEUMONIA targets"
    same = measures.consistency_numbers(proto + rng.normal(0, 0.05, (20, 16, 16)), {}, S, labels=labels,
                                        targets=labels)
    assert same["levels_agree"] and same["level"] == "high"


def test_within_interval_leaves_out_copies_of_an_image():
    """Catches: resampled copies of one image counted as a pair (correlation 1 pulls every draw up,
    so the interval no longer covers the value)."""
    rng = np.random.default_rng(0)
    maps, labels = rng.uniform(size=(24, 8, 8)), np.arange(24) % 2
    w = similarity.within_intervals(maps, labels, n_boot=300, seed=1)
    c = similarity.consistency(maps, labels)
    assert w.a.value == pytest.approx(c.within_a) and w.b.value == pytest.approx(c.within_b)
    for e in (w.a, w.b, w.mean):
        assert e.lo <= e.value <= e.hi


def test_map_equal_to_input_gives_zero_with_zero_width():
    """Catches: maps and input resampled independently (the interval would have width), a
    difference taken against the wrong reference."""
    ref, labels, _ = anatomy()
    for maps in (ref, 2 * ref + 1):                                 # a monotone map: same ranks
        pc = similarity.paired_consistency(maps, ref, labels, n_boot=300, seed=0)
        for e in (pc.specificity, pc.within):
            assert e.value == pytest.approx(0, abs=1e-12) and e.lo == pytest.approx(0, abs=1e-12)
            assert e.hi == pytest.approx(0, abs=1e-12)
    c = measures.consistency_numbers(ref, {"input": ref}, S, labels=labels, targets=labels)
    assert c["vs_input"]["specific"] == "not shown to be more or less" and not c["vs_input"]["specific_beyond_input"]


def test_same_resample_for_map_and_input():
    """Catches: a bug that resamples map and input independently: the paired interval would be
    about as wide as the map's own, not much narrower."""
    ref, labels, rng = anatomy()
    maps = ref + rng.normal(0, 0.02, ref.shape)                    # nearly the input
    pc = similarity.paired_consistency(maps, ref, labels, n_boot=300, seed=0)
    own = similarity.consistency_test(maps, labels, n_perm=10, n_boot=300, seed=0)
    assert (pc.specificity.hi - pc.specificity.lo) < 0.5 * (own.hi - own.lo)


def test_class_structure_beyond_the_input_is_found_and_its_absence_too():
    """Catches: the sign of map minus input swapped, "more" declared when the interval has 0."""
    ref, labels, rng = anatomy()
    proto = rng.uniform(size=(2, 16, 16))
    maps = ref + 1.0 * proto[labels]                                # the map adds class structure
    c = measures.consistency_numbers(maps, {"input": ref}, S, labels=labels, targets=labels)
    assert c["vs_input"]["specificity"]["lo"] > 0 and c["vs_input"]["specific"] == "more"
    assert c["vs_input"]["specific_beyond_input"]
    # the input has the class structure, the map does not: less class-specific than its input
    c2 = measures.consistency_numbers(ref, {"input": maps}, S, labels=labels, targets=labels)
    assert c2["vs_input"]["specificity"]["hi"] < 0 and c2["vs_input"]["specific"] == "less"


def test_grouping_by_target_differs_from_grouping_by_label():
    """Catches: the grouping parameter ignored (targets and labels swapped or one used for both)."""
    rng = np.random.default_rng(2)
    targets = np.repeat([0, 1], 12)
    labels = targets.copy()
    labels[::3] = 1 - labels[::3]                                   # 8 decisions differ from the label
    proto = rng.uniform(size=(2, 16, 16))
    maps = proto[targets] + rng.normal(0, 0.3, (24, 16, 16))        # maps follow the explained target
    by_t = measures.consistency_numbers(maps, {}, S, labels=labels, targets=targets, by="target")
    by_l = measures.consistency_numbers(maps, {}, S, labels=labels, targets=targets, by="label")
    assert by_t["by"] == "target" and by_l["by"] == "label"
    assert by_t["diff"]["lo"] > by_l["diff"]["hi"]
    assert by_t["by_label"]["diff"] == by_l["diff"] and by_t["n_target_not_label"] == 8
    assert "by_label" not in by_l
    with pytest.raises(ValueError, match="grouping"):
        measures.consistency_numbers(maps, {}, S, labels=labels, targets=targets, by="truth")


def test_verdict_without_flagged_images():
    """Catches: the check run on all images (always "holds"), images dropped from the wrong
    group, a too-small group not reported as uncheckable."""
    ref, labels, rng = anatomy(n=20)
    proto = rng.uniform(size=(2, 16, 16))
    drop = np.zeros(20, bool)
    drop[:14] = True                                                # 7 of 10 per group
    maps = np.where(drop[:, None, None], ref + 2 * proto[labels], ref)   # structure only in dropped maps
    nulls = {"input": ref}
    full = measures.consistency_numbers(maps, nulls, S, labels=labels, targets=labels)
    assert full["vs_input"]["specific"] == "more"
    w = measures.consistency_without(maps, nulls, S, full, labels=labels, targets=labels, drop=drop)
    assert w["n_dropped"] == {"NORMAL": 7, "PNEUMONIA": 7} and w["n_kept"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert w["verdict"] == "changes without them" and "class specificity beyond the input" in w["changed"]
    assert w["vs_input"]["specific"] == "not shown to be more or less"
    none = measures.consistency_without(maps, nulls, S, full, labels=labels, targets=labels, drop=np.zeros(20, bool))
    assert none["verdict"] == "holds" and none["changed"] == []
    gone = measures.consistency_without(maps, nulls, S, full, labels=labels, targets=labels, drop=labels == 1)
    assert not gone["checkable"] and gone["verdict"].startswith("cannot be checked")


@pytest.mark.parametrize("old,new,value,lo,hi,want", [
    ("high", "high", 0.6, 0.5, 0.7, "same"),
    ("high", "between moderate and high (the interval contains the cut-off)", 0.55, 0.48, 0.6, "less certain"),
    ("high", "between moderate and high (the interval contains the cut-off)", 0.7, 0.45, 0.6, "changed"),
    ("high", "moderate", 0.55, 0.3, 0.45, "changed"),                  # a decided word that moved
    ("more", "not shown to be more or less", 0.03, -0.01, 0.05, "less certain"),
    ("more", "not shown to be more or less", 0.30, -0.01, 0.05, "changed")])
def test_change_of_a_verdict_on_a_subset(old, new, value, lo, hi, want):
    """Catches: a wider interval on fewer images reported as a changed verdict, or an effect that
    is gone reported as merely less certain."""
    assert measures._change(old, new, {"value": value}, {"lo": lo, "hi": hi}) == want


def test_one_decided_class_says_cannot_tell_with_its_counts():
    # catches: consistency raising when every explained image is decided as one class (a small
    # dataset's collapsed model), counts of the groups lost, or a "class-specific" verdict without data
    rng = np.random.default_rng(3)
    maps = rng.uniform(size=(6, 16, 16))
    labels = np.array([0, 0, 0, 1, 1, 1])
    c = measures.consistency_numbers(maps, {"input": maps}, S, labels=labels, targets=np.ones(6, int))
    assert c["told"] is False and c["class_specific"] is False
    assert c["n"] == {"NORMAL": 0, "PNEUMONIA": 6}
    assert c["level"].startswith("not measurable (cannot tell: 0 NORMAL and 6 PNEUMONIA targets")
    assert c["vs_input"]["specific_beyond_input"] is False and "cannot tell" in c["vs_input"]["specific"]
    assert "cannot tell" not in c["by_label"]["level"]             # grouped by label, both classes are there
    told = measures.consistency_numbers(maps, {"input": maps}, S, labels=labels, targets=labels)
    assert told["told"] is True and told["vs_input"]["told"] is True and told["reason"] == ""

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


def _two_prototypes(n=24, size=16, seed=0, noise=0.3):
    """Maps of two class prototypes (group 0 / group 1, alternating) plus per-image noise: class-specific."""
    rng = np.random.default_rng(seed)
    protos = rng.uniform(size=(2, size, size))
    labels = np.arange(n) % 2
    return protos[labels] + rng.normal(0, noise, (n, size, size)), labels, rng


def test_maps_more_class_specific_than_a_model_that_learned_nothing():
    """The main maps separate the targets, the learned-nothing models' maps share one anatomy and do not: "more
    class-specific than a model that learned nothing", not a property of the method. Catches: the difference taken
    the other way round (reference minus main; the one-line sign swap), or the word read from the reference's own
    interval instead of the paired difference's."""
    maps, labels, rng = _two_prototypes()
    nothing = {f"random-{k}": anatomy(seed=k + 1)[0] for k in range(2)}
    c = measures.consistency_numbers(maps, {"input": anatomy(seed=9)[0]}, S, labels=labels, targets=labels)
    r = measures.learned_specificity(maps, anatomy(seed=9)[0], nothing, labels, S, c)
    assert c["class_specific"] and r["told"] and r["several"] and r["n"] == 2
    assert r["says"] == {"more": True, "no_more": False, "cannot_tell": False}
    assert r["word"] == "more class-specific than a model that learned nothing"
    assert r["difference"]["lo"] > 0 and not r["learned_specific"] and not r["method_property"]
    assert r["difference"]["value"] == pytest.approx(c["diff"]["value"] - r["reference"]["value"])
    assert [m["model"] for m in r["per_model"]] == ["random-0", "random-1"]
    assert r["reference"]["value"] == pytest.approx(np.mean([m["diff"]["value"] for m in r["per_model"]]))


def test_class_specificity_a_model_that_learned_nothing_reaches_is_the_methods():
    """Learned-nothing maps equal to the main maps (class-specific by construction, as Grad-CAM's ReLU(S) against
    ReLU(-S) is): "no more", and the verdict is a property of the method. Catches: ``>=`` for ``>`` on the paired
    difference (a difference exactly 0 in every draw would read "more"), or ``method_property`` never set."""
    maps, labels, _ = _two_prototypes()
    inp = anatomy(seed=9)[0]
    c = measures.consistency_numbers(maps, {"input": inp}, S, labels=labels, targets=labels)
    r = measures.learned_specificity(maps, inp, {"random-1": maps.copy()}, labels, S, c)
    assert c["class_specific"] and c["vs_input"]["specific_beyond_input"]
    for k in ("value", "lo", "hi"):
        assert r["difference"][k] == pytest.approx(0, abs=1e-12)
    assert r["says"]["no_more"] and r["learned_specific"] and r["learned_beyond_input"] and r["method_property"]
    assert not r["several"] and r["reference_models"] == r["reference"]      # one model: no interval over models
    # the main maps that separate nothing: no verdict to call the method's
    flat = anatomy(seed=4)[0]
    c0 = measures.consistency_numbers(flat, {"input": inp}, S, labels=labels, targets=labels)
    r0 = measures.learned_specificity(flat, inp, {"random-1": flat.copy()}, labels, S, c0)
    assert not c0["class_specific"] and r0["says"]["no_more"] and not r0["method_property"]


def test_one_learned_nothing_model_is_the_paired_test_of_map_minus_it():
    """With one stack, the difference is :func:`similarity.paired_consistency`'s (the same draws, the same images for
    both). Catches: main and reference resampled apart (an interval as wide as the main map's own), or the models
    drawn from the random stream with one model (the images' draws would shift)."""
    maps, labels, _ = _two_prototypes()
    ref = anatomy(seed=2)[0]
    got = similarity.specificity_against(maps, [ref], labels, input_alone=ref, n_boot=300, seed=0)
    want = similarity.paired_consistency(maps, ref, labels, n_boot=300, seed=0).specificity
    assert (got.difference.value, got.difference.lo, got.difference.hi) == pytest.approx((want.value, want.lo, want.hi))
    assert got.vs_input.value == pytest.approx(0, abs=1e-12) and got.vs_input.hi == pytest.approx(0, abs=1e-12)


def test_several_models_widen_the_interval_over_models():
    """Two learned-nothing models that differ (one class-specific, one not): the interval over images and models is
    wider than over images alone. Catches: the models never resampled (an interval that ignores how much they
    differ)."""
    maps, labels, _ = _two_prototypes(seed=1)
    got = similarity.specificity_against(maps, [maps + 0, anatomy(seed=3)[0]], labels, n_boot=300, seed=0)
    assert got.reference_models.value == got.reference.value
    assert got.reference_models.hi - got.reference_models.lo > 2 * (got.reference.hi - got.reference.lo)
    assert got.vs_input is None


@pytest.mark.parametrize("counted, reason", [(False, "Q5.1 counts none of the 3 random-label models"),
                                             (True, "1 NORMAL and 23 PNEUMONIA targets")])
def test_no_counted_model_cannot_tell(counted, reason):
    """No counted model (the quick build) or a target with one map: "cannot tell" with the reason, and never a
    property of the method. Catches: a missing reference read as "no more" (which would pass the method verdict)."""
    maps, labels, _ = _two_prototypes()
    refs = {}
    if counted:
        labels, refs = np.r_[0, np.ones(len(maps) - 1, int)], {"random-1": maps}
    c = measures.consistency_numbers(maps, {"input": maps}, S, labels=labels, targets=labels)
    r = measures.learned_specificity(maps, maps, refs, labels, S, c,
                                     none_reason="Q5.1 counts none of the 3 random-label models")
    assert r["says"] == {"more": False, "no_more": False, "cannot_tell": True} and not r["told"]
    assert reason in r["reason"] and r["word"].startswith("cannot tell (") and not r["method_property"]

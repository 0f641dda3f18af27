"""xaikit.seeds: a verdict holds for the recipe only when every seed reaches it."""

import numpy as np
import pytest

from xaikit.seeds import agreement, first_per_class


def test_two_of_three_is_not_holding():
    # catches `holds = k >= n - 1` or `k > 0`: a verdict reached by 2 of 3 seeds is not stated as holding
    a = agreement("more", {"main": "more", "main-2": "more", "main-3": "no more and no less"})
    assert (a.k, a.n, a.holds) == (2, 3, False)
    assert a.seeds == ("main", "main-2")
    assert a.as_dict()["holds"] is False


def test_every_seed_holds():
    a = agreement("Partly", {"main": "Partly", "main-2": "Partly", "main-3": "Partly"})
    assert (a.k, a.n, a.holds) == (3, 3, True)


def test_the_word_is_compared_exactly():
    # catches a substring test ("more" in "no more and no less")
    a = agreement("more", {"main": "no more and no less"})
    assert (a.k, a.holds) == (0, False)


def test_no_seed_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        agreement("more", {})


def test_first_per_class_keeps_order_and_caps():
    y = np.array([1, 0, 0, 1, 0, 1, 1])
    assert first_per_class(y, 2).tolist() == [1, 2, 0, 3]
    assert first_per_class(y, 9).tolist() == [1, 2, 4, 0, 3, 5, 6]      # fewer than asked: all of the class
    with pytest.raises(ValueError):
        first_per_class(y, 0)


class _Ctx:
    def __init__(self, per_class):
        self.cfg = {"sanity.images_per_class": per_class}


def _rows(words_per_seed, n=4):
    return [{"model": m, "words": w, "n": n, "est": {k: {"value": 1.0, "lo": 0.5, "hi": 1.5} for k in w}}
            for m, w in words_per_seed.items()]


def _specs(keys, derived=()):
    from report import seeds
    return {k: seeds.Spec(f"the {k}", "a rule with cut-off {cut}", lambda st: {"cut": st["cut"]},
                          lambda r, k=k: r["est"][k], lambda n, k=k: n.get(k), derived=k in derived)
            for k in keys}


def _summary(stated, per_seed, per_class=2, labels=(0, 0, 0, 1, 1, 1), derived=()):
    from report import seeds
    return seeds.summary(_Ctx(per_class), np.array(labels), stated, {}, _rows(per_seed), _specs(stated, derived),
                         {"cut": 0.3})


def _q3_5(out):
    from report import render
    return render.render_answer(render.answer_env(), "q3_5.md", {"q3": {"seeds": out}, "tab": {"q3_seeds": 7}})


def test_summary_and_the_sentence_of_a_verdict_reached_by_two_of_three():
    # catches a summary that counts a verdict as holding when one seed misses it, a Q3.5 sentence
    # that states it as holding, and a derived verdict (the answer) counted beside its parts
    stated = {"answer": "Partly", "baseline_dependence": "strongly", "lung": "more"}
    out = _summary(stated, {"main": {"answer": "Partly", "baseline_dependence": "strongly", "lung": "more"},
                            "main-2": {"answer": "Partly", "baseline_dependence": "moderately", "lung": "more"},
                            "main-3": {"answer": "Partly", "baseline_dependence": "strongly", "lung": "more"}},
                   derived=("answer",))
    assert out["images"] == 4 and out["n"] == 3
    assert out["holds"]["answer"]["holds"] and not out["holds"]["baseline_dependence"]["holds"]
    assert (out["n_holding"], out["n_verdicts"], out["answer"], out["all_hold"]) == (1, 2, "Partly", False)
    assert out["not_holding"] == ["baseline_dependence"]
    assert out["holds"]["baseline_dependence"]["others"] == {"main-2": "moderately"}
    assert out["holds"]["baseline_dependence"]["cutoffs"] == {"cut": 0.3}
    assert out["holds"]["baseline_dependence"]["rule"] == "a rule with cut-off 0.3"
    text = _q3_5(out)
    assert ("the baseline_dependence: \"strongly\", holds for main and main-3, not for main-2 (2 of 3 seeds), "
            "not for the recipe (other words: main-2 \"moderately\")") in text
    assert "main model only" not in text
    assert "the answer: \"Partly\", holds for all 3 seeds" in text and "not counted" in text
    assert "1 of the 2 verdicts" in text


def test_the_main_model_missing_a_word_is_never_written_as_the_main_model_only():
    # catches the sentence of #30: "holds for the main model only" for a verdict the main model
    # misses and main-2 reaches (the phrase written without looking at which seeds reach it)
    from report import seeds

    v = seeds.SeedVerdict(key="lung_NORMAL", about="|IG| in the lung fields, NORMAL images", rule="r", cutoffs=(),
                          stated="concentrated", stated_estimate=None, n_stated_images=100,
                          reference="concentrated", n_images=40,
                          seeds=(seeds.SeedWord("main", "not clearly concentrated", None),
                                 seeds.SeedWord("main-2", "concentrated", None),
                                 seeds.SeedWord("main-3", "not concentrated", None)))
    assert v.reaching == ("main-2",) and v.missing == ("main", "main-3") and not v.holds
    for sentence in (v.text(), v.line(), v.reach()):
        assert "main-2" in sentence and "main model only" not in sentence
    assert v.who() == "holds for main-2, not for main and main-3 (1 of 3 seeds)"
    assert v.reach() == "main-2 reaches it, main and main-3 do not"


def test_verdicts_missed_by_the_same_seeds_are_named_once():
    # catches the findings' list of missed verdicts repeating "main reaches it, main-2 does not" after each
    # verdict (a list long enough to spill the findings onto a page of their own), or grouping verdicts that
    # different seeds miss under one phrase
    from report import seeds

    def v(about, words):
        return seeds.SeedVerdict(key=about, about=about, rule="r", cutoffs=(), stated="high", stated_estimate=None,
                                 n_stated_images=10, reference="high", n_images=10,
                                 seeds=tuple(seeds.SeedWord(m, w, None) for m, w in words.items()))
    a = v("a", {"main": "high", "main-2": "low", "main-3": "high"})
    b = v("b", {"main": "high", "main-2": "high", "main-3": "low"})
    c = v("c", {"main": "high", "main-2": "low", "main-3": "high"})
    assert seeds.missed_text([a, b, c]) == ("a and c \u2014 main and main-3 reach them, main-2 does not; "
                                            "on b \u2014 main and main-2 reach it, main-3 does not")
    assert seeds.missed_text([]) == ""


def test_seeds_are_judged_on_the_references_own_images():
    # catches seeds compared with the word the main model reaches on all its images (100) while they
    # are explained on fewer (40): the reference is the main model's word on the seeds' images, and
    # a stated word that differs from it is said to differ
    stated = {"lung": "concentrated"}
    out = _summary(stated, {"main": {"lung": "not clearly"}, "main-2": {"lung": "not clearly"},
                            "main-3": {"lung": "not clearly"}})
    v = out["holds"]["lung"]
    assert v["reference"] == v["word"] == "not clearly" and v["stated"] == "concentrated"
    assert v["holds"] and v["seeds"] == ["main", "main-2", "main-3"] and v["stated_differs"]
    assert v["text"] == ("holds for all 3 seeds, on the 4 images every seed is explained on, where the main model's "
                         "own word is \"not clearly\" (from all 6 images: \"concentrated\")")
    assert v["estimates"]["main-2"] == {"value": 1.0, "lo": 0.5, "hi": 1.5}


def test_one_seed_is_said_to_be_one_seed():
    out = _summary({"answer": "Yes"}, {"main": {"answer": "Yes"}}, per_class=1, labels=(0, 1))
    assert not out["several"] and out["holds"]["answer"]["text"] == "one seed only" and out["all_hold"]
    assert "Not measured" in _q3_5(out)


def test_a_seed_that_decides_one_class_cannot_tell_its_consistency():
    # catches: a seed whose decisions are all one class stopping the build (the consistency of a
    # target class needs two maps) instead of a "cannot tell" that does not reach the main's word
    from report import seeds

    maps = np.random.default_rng(0).random((6, 8, 8))
    level, specific, interval, within, *_ = seeds.consistency_words(maps, maps, {}, labels=np.array([0, 0, 0, 1, 1, 1]),
                                                                targets=np.ones(6, int))
    assert level == specific == seeds.TOO_FEW and interval is None and within is None
    assert seeds.ci_text(None) == "-"


def test_an_agreement_of_no_seed_does_not_hold_and_is_frozen():
    # catches `holds = n >= 0 and k == n` (0 of 0 stated as holding) and a mutable result
    import dataclasses

    from xaikit.seeds import Agreement

    a = Agreement("more", 0, 0, ())
    assert not a.holds
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.k = 1


def test_a_seed_that_decides_both_classes_gets_consistency_words():
    # catches a guard that always answers "cannot tell" (e.g. counting a third, empty class)
    from report import seeds

    st = {"n_boot": 50, "seed": 0, "level": 0.95, "alpha": 0.05, "consistency_high": 0.5, "consistency_moderate": 0.2,
          "cells": 16}
    maps = np.random.default_rng(1).random((8, 16, 16))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    level, specific, interval, within, *_ = seeds.consistency_words(maps, maps[::-1], st, labels=y, targets=y)
    assert seeds.TOO_FEW not in (level, specific) and interval is not None and set(within) >= {"NORMAL", "PNEUMONIA"}


def test_a_seeds_class_specificity_is_judged_against_the_models_that_learned_nothing():
    # catches (#32 item 3, the seeds' rows of Q3.5 / Q4.5): the seed word read from the input alone instead of the
    # learned-nothing models, or the models' maps ignored (a seed as class-specific as them called "more")
    from report import seeds

    st = {"n_boot": 200, "seed": 0, "level": 0.95, "alpha": 0.05, "consistency_high": 0.5, "consistency_moderate": 0.2,
          "cells": 8}
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 12)
    left, right = np.zeros((8, 8)), np.zeros((8, 8))
    left[:, :4], right[:, 4:] = 1, 1
    specific = np.where(y[:, None, None] == 0, left, right) + 0.3 * rng.random((24, 8, 8))
    noise = rng.random((24, 8, 8))
    kw = dict(labels=y, targets=y)
    more = seeds.consistency_words(specific, noise, st, learned={"random-1": noise, "random-2": rng.random((24, 8, 8))},
                                   **kw)
    assert more.learned_word == "more class-specific than a model that learned nothing" and more.vs_learned["lo"] > 0
    same = seeds.consistency_words(specific, noise, st, learned={"random-1": specific + 0.01 * rng.random((24, 8, 8))},
                                   **kw)
    assert same.learned_word == "no more class-specific than a model that learned nothing"
    none = seeds.consistency_words(specific, noise, st, learned={}, none_reason="no model counts", **kw)
    assert "no model counts" in none.learned_word

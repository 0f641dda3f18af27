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


def _rows(words_per_seed):
    return [{"model": m, "words": w} for m, w in words_per_seed.items()]


def test_summary_and_the_sentence_of_a_verdict_reached_by_two_of_three():
    # catches a summary that counts a verdict as holding when one seed misses it, and a
    # Q3.5 sentence that states it as holding
    from report import render, seeds

    labels = np.array([0, 0, 0, 1, 1, 1])
    ref = {"answer": "Partly", "baseline_dependence": "strongly"}
    rows = _rows({"main": {"answer": "Partly", "baseline_dependence": "strongly"},
                  "main-2": {"answer": "Partly", "baseline_dependence": "moderately"},
                  "main-3": {"answer": "Partly", "baseline_dependence": "strongly"}})
    out = seeds.summary(_Ctx(2), labels, ref, rows, {"answer": "the answer", "baseline_dependence": "the baseline"})
    assert out["images"] == 4 and out["n"] == 3
    assert out["holds"]["answer"]["holds"] and not out["holds"]["baseline_dependence"]["holds"]
    assert (out["n_holding"], out["n_verdicts"], out["answer"], out["all_hold"]) == (1, 2, "Partly", False)
    assert out["not_holding"] == ["baseline_dependence"]
    assert out["holds"]["baseline_dependence"]["others"] == {"main-2": "moderately"}
    text = render.render_answer(render.answer_env(), "q3_5.md", {"q3": {"seeds": out}, "tab": {"q3_seeds": 7}})
    assert "holds for the main model only (2 of 3 seeds reach it)" in text
    assert "the baseline: \"strongly\", holds for all" not in text
    assert "the answer: \"Partly\", holds for all 3 seeds" in text


def test_one_seed_is_said_to_be_one_seed():
    from report import render, seeds

    out = seeds.summary(_Ctx(1), np.array([0, 1]), {"answer": "Yes"}, _rows({"main": {"answer": "Yes"}}),
                        {"answer": "the answer"})
    assert not out["several"] and out["holds"]["answer"]["text"] == "one seed only" and out["all_hold"]
    text = render.render_answer(render.answer_env(), "q3_5.md", {"q3": {"seeds": out}, "tab": {"q3_seeds": 7}})
    assert "Not measured" in text


def test_a_seed_that_decides_one_class_cannot_tell_its_consistency():
    # catches: a seed whose decisions are all one class stopping the build (the consistency of a
    # target class needs two maps) instead of a "cannot tell" that does not reach the main's word
    from report import seeds

    maps = np.random.default_rng(0).random((6, 8, 8))
    level, specific, interval = seeds.consistency_words(maps, maps, {}, labels=np.array([0, 0, 0, 1, 1, 1]),
                                                        targets=np.ones(6, int))
    assert level == specific == seeds.TOO_FEW and interval is None
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

    st = {"n_boot": 50, "seed": 0, "level": 0.95, "alpha": 0.05, "consistency_high": 0.5, "consistency_moderate": 0.2}
    maps = np.random.default_rng(1).random((8, 16, 16))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    level, specific, interval = seeds.consistency_words(maps, maps[::-1], st, labels=y, targets=y)
    assert seeds.TOO_FEW not in (level, specific) and interval is not None

"""Every verdict in templates/answers/ depends on a computed variable (issue #12, must-show 4).

The fixture holds the numbers of a real (quick-profile) build; refresh it with
``python -m tests.answer_conditions build/quick`` after a build when numbers change shape.
"""

import json
from pathlib import Path

import pytest

from .answer_conditions import unflippable

FIXTURE = Path(__file__).parent / "fixtures" / "answer_variables.json"


def test_every_condition_changes_the_text():
    """Catches: an {% if %} whose branches say the same, a verdict typed into the prose beside
    a condition that no longer decides it, a condition on a variable the text ignores."""
    fx = json.loads(FIXTURE.read_text())
    assert unflippable(fx["numbers"], fx["config"], fx["profile"]) == []


def test_the_check_finds_a_condition_that_decides_nothing(tmp_path):
    """The checker itself: a template whose two branches say the same must be reported."""
    fx = json.loads(FIXTURE.read_text())
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "bad.md").write_text("IG is {% if q3.consistency.class_specific %}fine{% else %}fine{% endif %}.\n"
                                    "Grad-CAM is {{ 'ok' if q4.consistency.class_specific else 'not ok' }}.\n")
    problems = unflippable(fx["numbers"], fx["config"], fx["profile"], templates=tmp_path)
    assert problems == ["bad.md: q3.consistency.class_specific = "
                        f"{fx['numbers']['q3']['consistency']['class_specific']!r}"]


@pytest.mark.parametrize("q, template", [("q3", "q3_2.md"), ("q4", "q4_2.md")])
def test_the_region_answer_prints_the_learned_nothing_reference(q, template):
    """A build whose counted random-label models put their mass off the lungs while the main model's maps sit in
    them: the answer is "Yes", and the text names the reference, prints its lung ratio per class with its interval
    and the word. Catches: a template that still reads the spatial prior as the deciding reference, or prints the
    reference's ratio without its interval (the fixture's quick build counts no random-label model, so this branch
    is only rendered here)."""
    import copy

    import numpy as np

    from report import learned, measures
    from report.render import answer_env, answer_variables
    from tests.answer_conditions import render
    from tests.test_measures import S, setup
    fx = json.loads(FIXTURE.read_text())
    masks, labels, rng = setup()
    lungs = np.where(masks, 1.0, 0.0) + 0.01 * rng.uniform(size=masks.shape)
    nothing = rng.uniform(size=masks.shape)
    numbers = copy.deepcopy(fx["numbers"])
    r = measures.region_numbers(lungs, masks, labels, {"input": nothing, "random": nothing, "learned": nothing}, S)
    numbers[q]["regions"] = r
    numbers[q]["learned"] = learned.numbers(learned.Reference(q, ("random-1", "random-2"), (), nothing, labels, nothing))
    if "negative_delta" in numbers[q]:
        numbers[q]["negative_delta"].setdefault("regions", {})["beyond_learned"] = r["beyond_learned"]
    text = render(answer_env(), template, answer_variables(numbers, fx["config"], fx["profile"]))
    assert text.startswith("**Yes.**")
    assert ("beyond a model that learned nothing (the 2 random-label models counted in Q5.1, random-1 and random-2; "
            "same images and targets): **more**") in " ".join(text.split())
    e = r["NORMAL"]["learned"]["lung_ratio"]
    assert f"{e['value']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}] on NORMAL" in " ".join(text.split())


@pytest.mark.parametrize("q, template, method", [("q3", "q3_3.md", "IG"), ("q4", "q4_3.md", "Grad-CAM")])
@pytest.mark.parametrize("same", [True, False])
def test_class_specificity_prints_the_learned_nothing_reference(q, template, method, same):
    """Counted random-label models whose own maps are as class-specific as the main model's (``same``): the answer
    says the class-specificity is a property of the method and prints their within minus across beside the main
    model's; maps of one shared anatomy instead: "more class-specific than a model that learned nothing" with the
    paired difference. Catches: a template that keeps the quick build's "cannot be told" sentence when a reference
    exists, or prints the word without the reference's interval (the fixture's quick build counts no random-label
    model, so these branches are only rendered here)."""
    import copy

    from report import learned, measures
    from report.render import answer_env, answer_variables
    from tests.answer_conditions import render
    from tests.test_consistency import S, _two_prototypes, anatomy
    fx = json.loads(FIXTURE.read_text())
    maps, labels, _ = _two_prototypes()
    inp = anatomy(seed=9)[0]
    refs = {"random-1": maps.copy()} if same else {f"random-{k}": anatomy(seed=k)[0] for k in (1, 2)}
    c = measures.consistency_numbers(maps, {"input": inp}, S, labels=labels, targets=labels)
    c["learned"] = r = measures.learned_specificity(maps, inp, refs, labels, S, c)
    numbers = copy.deepcopy(fx["numbers"])
    numbers[q]["consistency"].update({k: c[k] for k in ("diff", "learned")})
    numbers[q]["learned"] = learned.numbers(learned.Reference(q, tuple(refs), (), maps, labels, maps))
    text = " ".join(render(answer_env(), template, answer_variables(numbers, fx["config"], fx["profile"])).split())
    t = lambda e: f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"
    assert "cannot be told (" not in text and "Not measured" not in text
    assert f"{t(r['reference_models'])} for them" in text and t(r["difference"]) in text
    assert r["per_model_text"] in text
    assert (f"so is {method}'s above" in text) == same and (f"{method}'s above is not such a verdict" in text) != same
    if same:
        assert (f"reach this class-specificity as strongly, so it is a property of {method}, not of the "
                "classifier") in text
    else:
        assert f"{method} maps are **more class-specific than a model that learned nothing**" in text
        assert "over images and models" in text

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

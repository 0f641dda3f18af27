"""Q5's prose states every outcome with the numbers that decide it (issue #18, must-show 2).

The Q5 answer templates and the findings page are rendered with synthetic results made by the
real rule (``xaikit.sanity.randomization_test`` on arrays built to give each outcome), put into
the numbers of a real quick build (the committed fixture). For each outcome the text must name
it, and the rho interval printed beside it must lie where that outcome says.
"""

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from report.q5_sanity import _headline
from report.render import answer_env, answer_variables
from report.words import says
from xaikit import sanity

FIXTURE = Path(__file__).parent / "fixtures" / "answer_variables.json"
CUT = 0.5


def _arrays(cross: float, ceiling: float, floor: float, c=3, r=3, n=10):
    rng = np.random.default_rng(0)
    j = lambda shape: 0.01 * rng.normal(size=shape)  # noqa: E731
    return cross + j((c, r, n)), ceiling + j((c, c, n)), floor + j((c, c, n))


DESIGNED = {"pass": (0.2, 0.8, 0.2), "fail": (0.8, 0.8, 0.2), "inconclusive": (0.5, 0.8, 0.2),
            "uninformative": (0.1, 0.3, 0.3)}


def _result(outcome: str, template: dict) -> dict:
    r = sanity.randomization_test(*_arrays(*DESIGNED[outcome]), cut=CUT, n_boot=300, seed=1)
    assert r.outcome == outcome
    out = copy.deepcopy(template)
    out.update(r.as_dict())
    out["holm_outcome"] = r.outcome
    out["outcome_says"] = says(r.outcome, sanity.OUTCOMES)      # as report/q5_sanity.py does
    return out


def _render(q5: dict, fx: dict, name: str) -> str:
    numbers = dict(fx["numbers"], q5=q5)
    env = answer_env()
    return env.get_template(name).render(**answer_variables(numbers, fx["config"], fx["profile"]))


def _rho_after(text: str, label: str) -> tuple[float, float, float]:
    m = re.search(re.escape(label) + r".*?rho = ([-\d.]+) \[([-\d.]+), ([-\d.]+)\]", text, re.S)
    assert m, f"no rho after {label!r} in:\n{text[:600]}"
    return tuple(float(v) for v in m.groups())


@pytest.mark.parametrize("ig_outcome,cam_outcome", [(o, p) for o in sanity.OUTCOMES for p in sanity.OUTCOMES
                                                    if o == p or (o, p) in {("pass", "fail"), ("fail", "pass")}])
def test_q5_text_states_each_outcome_with_its_deciding_numbers(ig_outcome, cam_outcome):
    """Catches: a verdict word that does not follow the outcome (e.g. "passes" printed for an
    inconclusive result), or a sentence whose interval contradicts its verdict."""
    fx = json.loads(FIXTURE.read_text())
    q5 = copy.deepcopy(fx["numbers"]["q5"])
    q5["cut"] = CUT
    primary = q5["primary"]
    for meth, outcome in (("ig", ig_outcome), ("gradcam", cam_outcome)):
        q5[meth][primary]["subset"] = _result(outcome, q5[meth][primary]["subset"])
        q5[meth]["headline"] = _headline(q5[meth], primary, {d: None for d in q5["designs"]})
    text = _render(q5, fx, "q5_2.md")
    verbs = {"pass": "passes", "fail": "fails", "inconclusive": "is inconclusive in",
             "uninformative": "cannot be judged by"}
    assert f"IG {verbs[ig_outcome]} the data randomization test" in text
    assert f"Grad-CAM {verbs[cam_outcome]} it" in text
    for name, outcome in (("IG", ig_outcome), ("Grad-CAM", cam_outcome)):
        assert f"**{name}: {outcome}.**" in text
        rho, lo, hi = _rho_after(text, f"**{name}: {outcome}.**")
        if outcome == "pass":
            assert hi < CUT and "share with the true-label maps little more than" in text
        elif outcome == "fail":
            assert lo > CUT
        elif outcome == "inconclusive":
            assert lo <= CUT <= hi and "interval contains the cut" in text
        else:
            assert "cannot tell a second true-label model from" in text
    findings = _render(q5, fx, "findings.md")
    assert f"IG {verbs[ig_outcome]} it" in findings and f"Grad-CAM {verbs[cam_outcome]} it" in findings


def test_q5_text_says_when_the_designs_disagree():
    """Catches: the whole-split verdict printed without saying that it contradicts the headline."""
    fx = json.loads(FIXTURE.read_text())
    q5 = copy.deepcopy(fx["numbers"]["q5"])
    if not q5.get("whole"):
        pytest.skip("the fixture build has no whole-split design")
    p = q5["primary"]
    q5["ig"][p]["subset"] = _result("pass", q5["ig"][p]["subset"])
    q5["ig"][p]["whole"] = _result("fail", q5["ig"][p]["whole"])
    q5["ig"]["headline"] = _headline(q5["ig"], p, {"subset": None, "whole": None})
    text = _render(q5, fx, "q5_2.md")
    assert "the two designs **disagree**" in text
    q5["ig"][p]["whole"] = _result("pass", q5["ig"][p]["whole"])
    q5["ig"]["headline"] = _headline(q5["ig"], p, {"subset": None, "whole": None})
    assert "the two designs agree" in _render(q5, fx, "q5_2.md")

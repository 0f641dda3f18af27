"""Every figure is pointed to by the prose of its own sub-question, on the side where it prints
(issue 24: a sentence per figure that says what to see in it).

A figure of the body must be named in the body part of its answer (a reader of the body never
meets an unexplained figure); a figure of the appendix in its answer's body or methods part.
Rendered with the numbers of a real build (the fixture of tests/test_answer_conditions.py).
"""

import json
import re
from pathlib import Path

from report.render import answer_env, answer_variables, layout, render_answer_parts

FIXTURE = Path(__file__).parent / "fixtures" / "answer_variables.json"


def named(number: int, text: str) -> bool:
    """True when ``text`` says "Figure N" or lists N in "Figures A, B and N" / "Figures A-N"."""
    sep = r"(?:,\s+|\s+and\s+|-|\s+against\s+Figures\s+)"
    return re.search(rf"Figures?\s+(?:\d+{sep})*{number}\b", text) is not None


def unnamed_figures(outline: list, variables: dict) -> list[str]:
    env = answer_env()
    fig = variables["fig"]
    missing = []
    for section in outline:
        for sub in section["subs"]:
            body, methods = render_answer_parts(env, sub["answer"], variables)
            missing += [f"{sub['number']}: body figure {f} (Figure {fig[f]})" for f in sub["figures"]
                        if not named(fig[f], body)]
            missing += [f"{sub['number']}: appendix figure {f} (Figure {fig[f]})"
                        for f in sub.get("appendix_figures", []) if not named(fig[f], body + "\n" + methods)]
    return missing


def test_the_pattern_reads_lists_of_figures():
    # catches: "Figures 5 and 6" counted for 5 only, or "Figure 16" taken for Figure 1
    assert named(6, "Figures 5 and 6 show the maps") and named(5, "Figures 5 and 6")
    assert named(11, "Figures 5 and 6 against Figures 10 and 11") and named(26, "Figures 24,\n25 and 26")
    assert not named(1, "Figure 16 shows") and not named(3, "Table 3 lists")


def test_every_figure_is_named_where_it_prints():
    """Catches: a figure moved to the body whose only mention stayed in the methods part, or a
    figure without any sentence."""
    fx = json.loads(FIXTURE.read_text())
    outline = layout()
    variables = answer_variables(fx["numbers"], fx["config"], fx["profile"], outline)
    assert unnamed_figures(outline, variables) == []

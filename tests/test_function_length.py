"""No function in report/ or xaikit/ is over 60 lines (issue #30, item 4): a stage's ``run`` reads
like its section's outline and the arithmetic lives in named functions that tests can call.

A ratchet: the functions that were longer when the rule came in are listed in ``LONGER`` with their
length then; each may only shrink, and the test fails until a function that meets the rule is taken
off the list (so the list only ever gets shorter). Every other function must be at most ``MAX_LINES``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
# "file:function" -> its length when the rule came in (2026-12-04), to be refactored: empty since every function
# was split (2026-12-05); kept so that an exception, if one is ever needed, is written here and only shrinks
LONGER: dict[str, int] = {}


def lengths(source: str, name: str) -> dict[str, int]:
    """"file:function" -> lines (def to last line) of every function and method in ``source``."""
    return {f"{name}:{n.name}": n.end_lineno - n.lineno + 1 for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def too_long(found: dict[str, int], longer: dict[str, int] = LONGER) -> list[str]:
    out = []
    for fn, n in sorted(found.items()):
        cap = longer.get(fn, MAX_LINES)
        if n > cap:
            out.append(f"{fn} has {n} lines (at most {cap})")
        elif fn in longer and n <= MAX_LINES:
            out.append(f"{fn} has {n} lines now: take it off LONGER")
    return out


def test_functions_are_short():
    # catches: a new 100-line stage function, or a listed one growing back
    found = {}
    for path in sorted([*ROOT.glob("report/*.py"), *ROOT.glob("xaikit/*.py")]):
        found.update(lengths(path.read_text(), path.relative_to(ROOT).as_posix()))
    assert too_long(found) == []
    assert set(LONGER) <= set(found), "a listed function was renamed or removed: update LONGER"


@pytest.mark.parametrize("body_lines, longer, expected", [
    (61, {}, ["x.py:f has 62 lines (at most 60)"]),
    (58, {}, []),
    (70, {"x.py:f": 80}, []),
    (90, {"x.py:f": 80}, ["x.py:f has 91 lines (at most 80)"]),
    (40, {"x.py:f": 80}, ["x.py:f has 41 lines now: take it off LONGER"]),
])
def test_the_rule_can_fail(body_lines, longer, expected):
    # catches: a counter that ignores the body, or a ratchet that lets a listed function grow or stay listed
    source = "def f():\n" + "    x = 1\n" * body_lines
    assert too_long(lengths(source, "x.py"), longer) == expected

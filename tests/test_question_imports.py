"""No question module imports another question's module (issue #30, item 1).

Maps are computed in ``report/maps.py`` (IG with its baselines, the explained score, Grad-CAM and its
layers); a section that needs them asks that module, so the sections do not depend on each other's code
and a new reader of maps adds no edge between questions. A question's own helper module may be imported
by its section (``q2_model`` runs ``q2_errors``, Q2.3): the number after ``q`` is the question.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[1] / "report"
QUESTION = re.compile(r"^q(\d+)_\w+$")


def question_imports(source: str) -> set[str]:
    """The report question modules (``q3_ig``...) a module's source imports, however written."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or mod.startswith("report"):
                names = [mod.split(".")[-1]] + [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[-1] for a in node.names if a.name.startswith("report.")]
        out |= {n for n in names if QUESTION.match(n)}
    return out


def crossings(name: str, source: str) -> list[str]:
    """The imports of another question's module by question module ``name`` ("q4_gradcam")."""
    own = QUESTION.match(name).group(1)
    return sorted(f"{name} imports {m}" for m in question_imports(source) if QUESTION.match(m).group(1) != own)


def test_no_question_module_imports_another_questions_module():
    # catches: Q4 or Q5 reaching into report/q3_ig.py for IG again instead of asking report/maps.py
    found = [c for path in sorted(REPORT.glob("q[0-9]*_*.py")) for c in crossings(path.stem, path.read_text())]
    assert found == []


@pytest.mark.parametrize("source", [
    "from .q3_ig import explain_ig\n",
    "from . import measures, q3_ig\n",
    "from report.q3_ig import baseline_images\n",
    "import report.q3_ig\n",
    "def f():\n    from .q3_ig import explain_ig\n",
])
def test_the_check_finds_a_planted_import(source):
    # catches: a check that misses one way of writing the import (relative, absolute, inside a function)
    assert crossings("q4_gradcam", source) == ["q4_gradcam imports q3_ig"]


def test_a_questions_own_module_is_allowed():
    # catches: a rule so strict that Q2 cannot run its own Q2.3 module
    assert crossings("q2_model", "from . import architecture, q2_errors\n") == []

"""The answer templates print, they never decide (issue #30, item 3).

``templates/answers/**/*.md`` hold the user's prose: sentences, fields (``{{ q3.regions.answer }}``),
``{% if %}`` / ``{% elif %}`` and inline ``a if b else c`` on boolean fields only, ``{% for %}`` loops
that only print, and ``{% include %}`` of a shared block inside ``{% with %}`` that names its
fields. Everything that counts, adds, compares or chooses between numbers happens in ``report/``
and reaches the templates as a named value (a sentence that must be computed is composed in Python,
beside its value, once). Parsed with Jinja's own parser, a template fails on:

- arithmetic: ``+ - * / // % **``, unary minus, string concatenation ``~``;
- a comparison (``==``, ``!=``, ``<``, ``>``, ``in``, ``not in``) or a test (``x is none``);
- a filter, except the four display filters of :func:`report.render.answer_env` (``fmt``, ``pct``,
  ``ci``, ``pval``). They are allowed, as one family, because each turns one number (or one
  interval) into its text at the precision the sentence needs and decides nothing; pre-formatting
  every number in Python instead would put the precision of the prose (``ci(2)`` in the findings,
  ``ci(3)`` in the appendix for the same interval) into the stages and their cache keys. ``join``,
  ``length``, ``capitalize``, ``round`` and every other filter are refused;
- a call (``v.others.items()``, ``range(...)``), ``{% set %}`` (``Assign``, ``AssignBlock``), a
  ``{% with %}`` whose values compute anything, a loop with a filter (``for v in xs if not v.holds``);
- the test of an ``if`` / ``elif`` / inline ``if`` that is not a plain field (``not``, ``and`` and
  ``or`` of fields are allowed), or whose field is not a boolean in the numbers of a real build
  (``tests/fixtures/answer_variables.json``; loop variables are not looked up);
- a line over 200 characters.

The planted templates at the end prove that each rule can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "templates" / "answers"
FIXTURE = Path(__file__).parent / "fixtures" / "answer_variables.json"
DISPLAY_FILTERS = {"fmt", "pct", "ci", "pval"}
MAX_LINE = 200
ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Neg,
              nodes.Pos, nodes.Concat)
WILD = "*"
PLAIN = (nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const)


def _path(node) -> tuple | None:
    keys = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const):
            keys.append(node.arg.value)
        elif isinstance(node.arg, nodes.Name):
            keys.append(WILD)             # q5.cascade[meth]: a loop variable's entry
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    return (node.name, *reversed(keys))


def _fields(test) -> list | None:
    """The fields a condition reads when it is a plain field or not/and/or of them; else None."""
    if isinstance(test, nodes.Not):
        return _fields(test.node)
    if isinstance(test, (nodes.And, nodes.Or)):
        a, b = _fields(test.left), _fields(test.right)
        return None if a is None or b is None else a + b
    if isinstance(test, (nodes.Name, nodes.Getattr, nodes.Getitem)) and _path(test):
        return [_path(test)]
    return None


def _lookup(variables: dict, path: tuple):
    v = variables
    for k in path:
        v = v[k]
    return v


def problems(source: str, name: str, variables: dict | None = None) -> list[str]:
    """Every rule ``source`` breaks, as "name:line: what" strings."""
    out = [f"{name}:{i}: line of {len(line)} characters (at most {MAX_LINE})"
           for i, line in enumerate(source.splitlines(), 1) if len(line) > MAX_LINE]
    tree = jinja2.Environment().parse(source)
    loop_names = {t.name for f in tree.find_all(nodes.For) for t in f.target.find_all(nodes.Name)} | {"loop"}
    loop_names |= {t.name for w in tree.find_all(nodes.With) for t in w.targets if isinstance(t, nodes.Name)}
    for node in tree.find_all(nodes.Node):
        where = f"{name}:{node.lineno}"
        if isinstance(node, ARITHMETIC):
            out.append(f"{where}: arithmetic ({type(node).__name__})")
        elif isinstance(node, (nodes.Compare, nodes.Test)):
            out.append(f"{where}: a comparison or test ({type(node).__name__})")
        elif isinstance(node, nodes.Filter) and node.name not in DISPLAY_FILTERS:
            out.append(f"{where}: filter `{node.name}`")
        elif isinstance(node, nodes.Call):
            out.append(f"{where}: a call")
        elif isinstance(node, (nodes.Assign, nodes.AssignBlock)):
            out.append(f"{where}: {{% set %}}")
        elif isinstance(node, nodes.With) and not all(isinstance(v, PLAIN) for v in node.values):
            out.append(f"{where}: {{% with %}} that computes")
        elif isinstance(node, nodes.For) and node.test is not None:
            out.append(f"{where}: a loop with a filter")
        elif isinstance(node, (nodes.If, nodes.CondExpr)):
            fields = _fields(node.test)
            if fields is None:
                out.append(f"{where}: a condition that is not a field (or not/and/or of fields)")
                continue
            for path in fields:
                if variables is None or path[0] in loop_names or WILD in path:
                    continue
                try:
                    value = _lookup(variables, path)
                except (KeyError, TypeError, IndexError):
                    continue          # behind a field this build does not have (a skipped section)
                if not isinstance(value, bool):
                    out.append(f"{where}: `{'.'.join(map(str, path))}` is a {type(value).__name__}, not a boolean")
    return out


def _variables() -> dict:
    from report.render import answer_variables
    fx = json.loads(FIXTURE.read_text())
    return answer_variables(fx["numbers"], fx["config"], fx["profile"])


def all_problems() -> list[str]:
    variables = _variables()
    return [p for path in sorted(ANSWERS.rglob("*.md"))
            for p in problems(path.read_text("utf-8"), path.relative_to(ANSWERS).as_posix(), variables)]


def test_answer_templates_only_print():
    # catches: counting, arithmetic, a comparison or a loop filter written back into the prose
    assert all_problems() == []


@pytest.mark.parametrize("planted, found", [
    ("{{ 2 * q5.n_seeds }} trainings", "arithmetic (Mul)"),
    ("{{ a ~ b }}", "arithmetic (Concat)"),
    ("{{ -x }}", "arithmetic (Neg)"),
    ("{% if q4.winner == 'IG' %}IG{% endif %}", "a comparison or test (Compare)"),
    ("{% if 'x' in q5.words %}x{% endif %}", "a comparison or test (Compare)"),
    ("{% if x is none %}x{% endif %}", "a comparison or test (Test)"),
    ("{{ q5.rows | length }}", "filter `length`"),
    ("{{ x | round(2) }}", "filter `round`"),
    ("{{ q3.models | join(', ') }}", "filter `join`"),
    ("{% for m, w in v.others.items() %}{{ m }}{% endfor %}", "a call"),
    ("{% set s = q4.summary %}{{ s }}", "{% set %}"),
    ("{% set s %}x{% endset %}{{ s }}", "{% set %}"),
    ("{% with s = q3.a + 1 %}{{ s }}{% endwith %}", "{% with %} that computes"),
    ("{% for v in vs if not v.holds %}{{ v }}{% endfor %}", "a loop with a filter"),
    ("{% if q3.count %}x{% endif %}", "`q3.count` is a int, not a boolean"),
    ("{{ 'a' if q3.word else 'b' }}", "`q3.word` is a str, not a boolean"),
    ("x" * 201, "line of 201 characters"),
])
def test_each_rule_can_fail(planted, found):
    # catches: a check that never fires (each planted template must be reported, with its rule)
    variables = {"q3": {"count": 3, "word": "yes", "ok": True}}
    found_all = problems(planted, "planted.md", variables)
    assert any(found in p for p in found_all), found_all


def test_printing_templates_pass():
    # catches: a check so strict that plain printing fails (fields, display filters, boolean ifs, loops, includes)
    ok = ("**{{ q3.regions.answer }}** ({{ q3.x | ci(2) }}, {{ q3.p | pct(0) }}).{% if q3.ok and not q3.ok %} a\n"
          "{% elif q3.ok %} b{% endif %}{% for v in q3.verdicts %}- {{ v.line }}{% if v.holds %}!{% endif %}\n"
          "{% endfor %}{% with s = q3.seeds, q = 'Q3' %}{% include 'x.md' %}{% endwith %}{{ q5.c[meth].x }}")
    assert problems(ok, "ok.md", {"q3": {"ok": True}}) == []

"""Every interval follows ``verdicts.alpha``, and no cut-off is typed into a verdict condition
(issue 19, must-show 2).

Three checks: (1) each interval-producing function of xaikit gives a narrower interval at
alpha 0.2 than at alpha 0.05 on the same data; (2) an AST scan of report/*.py fails when one of
those functions is called without its level/alpha argument, so a new call site cannot silently
fall back to the 95% default; (3) a scan of templates/answers/*.md fails on a numeric literal in
an ``{% if %}`` / ``{% elif %}`` condition or an inline ``x if cond else y``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from xaikit import intervals, sanity, similarity

ROOT = Path(__file__).resolve().parents[1]
WIDE, NARROW = 0.05, 0.2     # alpha values: a 95% and an 80% interval


def _width(e) -> float:
    return e.hi - e.lo


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 60)
    return y, rng.normal(size=120) + y


def _clustered(alpha):
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 1], 60)
    s = 1 / (1 + np.exp(-(rng.normal(size=180) + 1.2 * y)))
    g = np.array([f"{v}:{i // 2}" for i, v in enumerate(y)])
    r = intervals.clustered_threshold_bootstrap(y[::2], s[::2], g[::2], y[1::2], s[1::2], g[1::2],
                                                n_boot=300, seed=0, level=1 - alpha)
    return [r.threshold, *r.metrics().values()]


def _randomization(alpha):
    rng = np.random.default_rng(5)
    cross = 0.4 + 0.1 * rng.normal(size=(3, 3, 30))
    ceiling = 0.6 + 0.1 * rng.normal(size=(3, 3, 30))
    floor = 0.2 + 0.1 * rng.normal(size=(3, 3, 30))
    r = sanity.randomization_test(cross, ceiling, floor, cut=0.5, alpha=alpha, n_boot=400, seed=0)
    return [r.cross, r.ceiling, r.floor, r.gap, r.rho]


def _consistency(alpha):
    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1], 12)
    maps = rng.normal(size=(24, 6, 6)) + labels[:, None, None] * np.linspace(0, 1, 36).reshape(6, 6)
    t = similarity.consistency_test(maps, labels, n_perm=100, n_boot=400, seed=0, level=1 - alpha)
    return [t]


# each entry: alpha -> list of objects with .lo and .hi
PRODUCERS = {
    "intervals.wilson": lambda a: [intervals.wilson(40, 60, 1 - a)],
    "intervals.auc_bootstrap": lambda a: [intervals.auc_bootstrap(*_data(), n_boot=200, seed=0, level=1 - a)],
    "intervals.bootstrap": lambda a: [intervals.bootstrap(lambda u, v: np.mean(u - v), _data(1)[1], _data(2)[1],
                                                          n_boot=400, seed=0, level=1 - a)],
    "intervals.mean_ci": lambda a: [intervals.mean_ci(_data(3)[1], n_boot=400, seed=0, level=1 - a)],
    "intervals.classification_intervals": lambda a: list(intervals.classification_intervals(
        *_data(), 0.5, n_boot=200, seed=0, level=1 - a).values()),
    "intervals.clustered_threshold_bootstrap": _clustered,
    "sanity.randomization_test": _randomization,
    "sanity.bootstrap_mean": lambda a: [sanity.bootstrap_mean(_data(7)[1].reshape(2, 60), n_boot=400, seed=0,
                                                              alpha=a)],
    "similarity.consistency_test": _consistency,
}


@pytest.mark.parametrize("name", sorted(PRODUCERS))
def test_alpha_changes_every_intervals_width(name):
    """Catches: a level/alpha parameter that is accepted but not passed on (e.g. Wilson inside
    classification_intervals at its 0.95 default), or a percentile typed as 2.5/97.5."""
    wide, narrow = PRODUCERS[name](WIDE), PRODUCERS[name](NARROW)
    for w, n in zip(wide, narrow):
        assert _width(n) < _width(w), (name, n, w)


# --- every call site in report/ passes its level --------------------------------------------

# function name -> (module it comes from, the keyword that sets the level, its positional index)
LEVELLED = {
    "wilson": ("intervals", "level", 2), "auc_bootstrap": ("intervals", "level", None),
    "bootstrap": ("intervals", "level", None), "mean_ci": ("intervals", "level", None),
    "classification_intervals": ("intervals", "level", None),
    "clustered_threshold_bootstrap": ("intervals", "level", None),
    "randomization_test": ("sanity", "alpha", None), "bootstrap_mean": ("sanity", "alpha", None),
    "consistency_test": ("similarity", "level", None),
}


def _literal_keys(v: ast.AST) -> set | None:
    """The keys of a ``dict(k=...)`` call or a ``{"k": ...}`` literal, else None."""
    if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "dict":
        return {k.arg for k in v.keywords if k.arg}
    if isinstance(v, ast.Dict):
        return {k.value for k in v.keys if isinstance(k, ast.Constant)}
    return None


def _dict_keys(tree: ast.AST) -> dict[str, set]:
    """name -> keys of every ``name = dict(k=...)``, ``name = {"k": ...}`` or ``name = f(...)`` in the module,
    where ``f`` is a function of the module that returns such a dict."""
    makers: dict[str, set] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for r in ast.walk(node):
                if isinstance(r, ast.Return) and _literal_keys(r.value) is not None:
                    makers.setdefault(node.name, set()).update(_literal_keys(r.value))
    out: dict[str, set] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = node.value
            keys = _literal_keys(v)
            if keys is None and isinstance(v, ast.Call) and isinstance(v.func, ast.Name):
                keys = makers.get(v.func.id)
            if keys is not None:
                out.setdefault(node.targets[0].id, set()).update(keys)
    return out


def missing_levels(source: str) -> list[str]:
    """Calls of a LEVELLED function (as ``module.name`` or a name imported from that module)
    that set no level: neither the keyword, nor the positional slot, nor a ``**d`` whose dict
    is built in the same module with that key."""
    tree = ast.parse(source)
    imported = {a.asname or a.name: node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module for a in node.names}
    dicts = _dict_keys(tree)
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            name, module = f.attr, f.value.id
        elif isinstance(f, ast.Name):
            name, module = f.id, imported.get(f.id)
        else:
            continue
        if name not in LEVELLED or LEVELLED[name][0] != module:
            continue
        _, key, position = LEVELLED[name]
        ok = any(k.arg == key for k in node.keywords)
        ok |= position is not None and len(node.args) > position
        ok |= any(k.arg is None and isinstance(k.value, ast.Name) and key in dicts.get(k.value.id, ())
                  for k in node.keywords)
        if not ok:
            bad.append(f"line {node.lineno}: {module}.{name} without {key}")
    return bad


def test_every_interval_call_in_report_sets_its_level():
    """Catches: a new call such as ``intervals.mean_ci(v)`` in report/ that would print a 95%
    interval whatever ``verdicts.alpha`` says."""
    problems = {p.name: missing_levels(p.read_text()) for p in sorted((ROOT / "report").glob("*.py"))}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_level_scan_finds_a_call_without_level():
    src = ("from xaikit import intervals, sanity\nfrom xaikit.intervals import wilson\n"
           "ci = dict(n_boot=10, level=0.9)\nboot = dict(n_boot=10)\n"
           "intervals.mean_ci(v, **ci)\nintervals.mean_ci(v, **boot)\nwilson(1, 2)\nwilson(1, 2, 0.9)\n"
           "sanity.bootstrap_mean(v, alpha=0.1)\nsanity.bootstrap_mean(v, level=0.9)\n"
           "stats.bootstrap(v)\n"
           "def made():\n    return dict(n_boot=3, alpha=0.1)\ndef bare():\n    return dict(n_boot=3)\n"
           "b1 = made()\nb2 = bare()\nsanity.bootstrap_mean(v, **b1)\nsanity.bootstrap_mean(v, **b2)\n")
    assert missing_levels(src) == ["line 6: intervals.mean_ci without level", "line 7: intervals.wilson without level",
                                   "line 10: sanity.bootstrap_mean without alpha",
                                   "line 19: sanity.bootstrap_mean without alpha"]


# --- no numeric literal in a template's verdict condition -------------------------------------

CONDITION = re.compile(r"{%-?\s*(?:if|elif)\s+(.*?)-?%}", re.S)
EXPRESSION = re.compile(r"{{(.*?)}}", re.S)
INLINE_IF = re.compile(r"\bif\b(.*?)(?:\belse\b|$)", re.S)
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
FILTER_ARGS = re.compile(r"\|\s*\w+\s*\([^)]*\)")
SUBSCRIPT = re.compile(r"\[\s*-?\d+\s*\]")
# comparisons with 0 that are no cut-off, each with its reason: (file, condition) -> why
ZERO_ALLOWED = {
    ("q5_4.md", "cas[meth].top_down.flat_total + bu.flat_total > 0"):
        "a count of flat maps: > 0 means 'any', the boundary of a count, not a tuned cut-off",
}
# files another helper owns this session; the integrator moves their cut-offs into report/ and
# removes these exemptions (issue 19)
NOT_YET: set[str] = set()   # templates still exempt (none)


def literal_conditions(text: str) -> list[tuple[str, str]]:
    """(condition, literal) for every number in an if/elif tag or an inline if, ignoring
    subscripts ``[0]`` and filter arguments ``| fmt(2)``."""
    conds = [m.group(1) for m in CONDITION.finditer(text)]
    conds += [c for m in EXPRESSION.finditer(text) for c in INLINE_IF.findall(m.group(1))]
    out = []
    for c in conds:
        cleaned = SUBSCRIPT.sub("[]", FILTER_ARGS.sub("", c))
        out += [(" ".join(c.split()), n) for n in NUMBER.findall(cleaned)]
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "templates" / "answers").glob("*.md")), ids=lambda p: p.name)
def test_no_cut_off_literal_in_a_template_condition(path):
    """Catches: ``{% if x.p > 0.9 %}`` in prose, a cut-off that neither reaches numbers.json nor
    the config and is printed nowhere beside its verdict."""
    if path.name in NOT_YET:
        pytest.xfail(f"{path.name}: owned by another helper this session; the integrator moves its cut-offs")
    found = [(c, n) for c, n in literal_conditions(path.read_text())
             if not (float(n) == 0 and (path.name, c) in ZERO_ALLOWED)]
    assert found == []


def test_the_literal_scan_finds_a_typed_cut_off():
    text = ("{% if a.p > 0.9 %}x{% elif b[0] > c | fmt(2) %}y{% endif %}{{ 'u' if d.n >= 3 else 'v' }}"
            "{{ e | pct(0) }}{% if f > 0 %}z{% endif %}")
    assert literal_conditions(text) == [("a.p > 0.9", "0.9"), ("f > 0", "0"), ("d.n >= 3", "3")]

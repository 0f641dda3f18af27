"""Check that every condition in the answer templates decides text.

Given the variables of a build (``numbers.json`` + config), each answer template is rendered
once as is, then once per condition with that condition's inputs changed:

- every boolean or None leaf the template reads (found by recording the lookups, so leaves
  read inside ``{% for %}`` loops count too) is flipped (True <-> False, None -> a string); a
  leaf of a ``...says`` dict (one boolean per word of a verdict, :func:`report.words.says`) is
  flipped as its verdict: the dict is set to each other word in turn;
- every variable in an ``{% if %}`` test or an inline ``x if test else y`` is tried with
  values of its type until one changes the test's branch.

A numeric variable counts only when words change (numbers are masked, since it may also be
printed); a boolean, None or string flip counts when anything changes (a count, for example).
A condition whose flip leaves the text unchanged is a verdict that does not depend on its
number (both branches say the same), or a condition on something the text does not use.
Shared by the fast test (a committed fixture) and the end-to-end test (a fresh build).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

from jinja2 import UndefinedError, nodes

from report.render import answer_env, answer_variables

ANSWERS = Path(__file__).resolve().parent.parent / "templates" / "answers"
STATIC = ("fig", "tab", "config", "profile")     # not computed: never flipped
NUMBER_TRIES = (-1e9, -1.0, 0.0, 1e-9, 0.5, 1.0, 2.0, 1e9)
STRING_TRIES = ("", "blurred", "black", "IG", "Grad-CAM", "pass", "fail", "mixed", "other")


class Recorder(dict):
    """A dict that records the path of every leaf read through it."""

    def __init__(self, data: dict, path: tuple, seen: set):
        super().__init__(data)
        self._path, self._seen = path, seen

    def _wrap(self, key, value):
        p = self._path + (key,)
        if isinstance(value, dict):
            return Recorder(value, p, self._seen)
        self._seen.add(p)
        return value

    def __getitem__(self, key):
        return self._wrap(key, dict.__getitem__(self, key))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        return [(k, self._wrap(k, v)) for k, v in dict.items(self)]

    def values(self):
        return [v for _, v in self.items()]


def lookup(variables: dict, path: tuple):
    v = variables
    for k in path:
        v = v[k]
    return v


def replaced(variables: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(variables)
    d = out
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value
    return out


def _path(node) -> tuple | None:
    """("q3", "regions", "margin") for q3.regions.margin or q3["regions"].margin; else None."""
    keys = []
    while True:
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            keys.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            keys.append(node.name)
            return tuple(reversed(keys))
        else:
            return None


def condition_paths(env, name: str) -> set[tuple]:
    """Variable paths inside the tests of {% if %} blocks and inline if-expressions."""
    source = env.loader.get_source(env, name)[0]
    tree = env.parse(source)
    out = set()
    for cond in list(tree.find_all(nodes.If)) + list(tree.find_all(nodes.CondExpr)):
        for sub in [cond.test] + list(cond.test.find_all((nodes.Getattr, nodes.Getitem, nodes.Name))):
            p = _path(sub)
            if p:
                out.add(p)
    # keep full paths only: q3.regions.margin, not its prefixes q3 and q3.regions
    return {p for p in out if not any(len(q) > len(p) and q[:len(p)] == p for q in out)}


DIGITS = re.compile(r"[-+]?\d[\d.,]*(e[-+]?\d+)?%?")


def render(env, name: str, variables: dict) -> str:
    return env.get_template(name).render(**variables)


def words(text: str) -> str:
    """The text with every number replaced by #: a numeric variable that is also printed must
    change words, not just its own digits, to count as deciding something."""
    return DIGITS.sub("#", text)


def candidates(value):
    if isinstance(value, bool):
        return [not value]
    if value is None:
        return ["FLIPPED", *STRING_TRIES[1:]]
    if isinstance(value, (int, float)):
        return [v for v in NUMBER_TRIES if v != value]
    if isinstance(value, str):
        return [v for v in STRING_TRIES if v != value]
    if isinstance(value, dict):
        return [None]
    if isinstance(value, list):
        return [[]] if value else [["FLIPPED"]]
    return []


SAYS = "says"     # {word: bool} of one verdict (report.words.says; "says", "maps_says", ...): flipped as one


def other_words(says: dict) -> list[dict]:
    """The one-hot dicts of a verdict's other words: flipping one word of ``says`` alone would
    make two words true at once (or none), which no build produces."""
    return [{w: w == word for w in says} for word in says if not says[word]]


def unflippable(numbers: dict, config: dict, profile: str = "full", templates: Path = ANSWERS.parent) -> list[str]:
    """Every (template, variable) whose flip leaves the rendered text unchanged."""
    env = answer_env(templates)
    base_vars = answer_variables(numbers, config, profile)
    problems = []
    for tpl in sorted(p.name for p in (Path(templates) / "answers").glob("*.md")):
        seen: set = set()
        recorded = {k: (Recorder(v, (k,), seen) if isinstance(v, dict) else v) for k, v in base_vars.items()}
        base = render(env, tpl, recorded)
        leaves = {p for p in seen if p[0] not in STATIC and isinstance(lookup(base_vars, p), (bool, type(None)))}
        conds = {p for p in condition_paths(env, tpl) if p[0] not in STATIC and len(p) > 1}
        for path in sorted(leaves | conds, key=str):
            try:
                value = lookup(base_vars, path)
            except (KeyError, TypeError):
                continue              # a loop variable: its leaves are covered by the recorder
            changed = False
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            seen_as = words if numeric else (lambda t: t)
            says = len(path) > 2 and str(path[-2]).endswith(SAYS)
            tries = ([replaced(base_vars, path[:-1], onehot) for onehot in other_words(lookup(base_vars, path[:-1]))]
                     if says else [replaced(base_vars, path, new) for new in candidates(value)])
            for variables in tries:
                try:
                    text = render(env, tpl, variables)
                except UndefinedError:  # the other branch reads numbers this build does not have:
                    changed = True      # it says something else
                    break
                except Exception:       # a value of the wrong type for a filter: try the next
                    continue
                if seen_as(text) != seen_as(base):
                    changed = True
                    break
            if not changed:
                problems.append(f"{tpl}: {'.'.join(map(str, path))} = {value!r}")
    return problems


def write_fixture(build: Path, out: Path) -> None:
    """Store a build's numbers and config as the fixture of the fast test."""
    from xaikit.config import load_config
    numbers = json.loads((build / "numbers.json").read_text())
    numbers.pop("provenance", None)
    profile = build.name if build.name != "build" else "full"
    root = Path(__file__).resolve().parent.parent
    from report.preflight import split_run
    text = split_run((root / "xaikit.toml").read_text(), "xaikit.toml")[0]     # [run] is not the study's
    cfg = load_config(text, profile=None if profile == "full" else profile)
    out.write_text(json.dumps({"numbers": numbers, "config": cfg.as_dict(), "profile": cfg.profile},
                              indent=1, sort_keys=True))


if __name__ == "__main__":     # python -m tests.answer_conditions BUILD_DIR
    write_fixture(Path(sys.argv[1]), Path(__file__).parent / "fixtures" / "answer_variables.json")

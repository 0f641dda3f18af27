"""Every cut-off behind a verdict lives in the config (issue 19): ``[verdicts]`` for cut-offs,
``[attribution]`` for method settings (ROAD's steps, Q2.3's caps).

Four checks:

1. An AST scan of ``report/*.py`` fails on a cut-off typed into the code. The rule, applied to every
   module of ``report/``:

   - *literal operands*: a number compared with ``<``, ``<=``, ``>``, ``>=``, ``==`` or ``!=`` (alone or
     negated) must be 0 or 1 (the null of a difference and of a ratio, a label, an index, an empty or
     single count), or an integer compared with a structural quantity (the other side mentions
     ``len(``, ``.ndim``, ``.shape``, ``.size``, ``sum(``, a count ``n`` or ``n_<something>``: array
     ranks and the minimum sample of a correlation or an interval), or be listed in ``ALLOWED`` with its reason. A float other than
     0.0 and 1.0 is never structural.
   - *named constants*: a module-level name bound to a number (or a tuple, list or dict of numbers)
     must not be an operand of a comparison, or be subscripted in one, in its module: that is a
     cut-off under another name (``MIN_SPAN = 0.1`` ... ``lo > MIN_SPAN``), unless listed in
     ``ALLOWED_CONSTANTS`` with its reason.
   - *cut-off keywords*: a number passed as ``cut=``, ``cutoff=``, ``threshold=``, ``margin=``,
     ``floor=``, ``target=``, ``tolerance=`` or ``span=`` is a cut-off, unless listed in ``ALLOWED``.

   What it does not see: a literal handed to a function through a positional argument and compared
   there, or arithmetic that builds a cut-off (``0.5 + band`` is allowed: the chance AUC, named).
2. The scan finds each kind of planted cut-off (so it can fail).
3. The new keys enter the key of the section that reads them and no model's key.
4. Changing a key changes its verdict and the rendered prose: the verdict functions recomputed on
   the numbers of a real build (``tests/fixtures/answer_variables.json``) with the key overridden.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest

from xaikit.config import load_config

from .conftest import study_toml

ROOT = Path(__file__).resolve().parents[1]
TOML = study_toml()
OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
STRUCTURAL = re.compile(r"len\(|\.ndim|\.shape|\.size|sum\(|\bn\b|\bn_\w+")   # sizes, ranks and counts
CUT_KEYWORDS = {"cut", "cutoff", "threshold", "margin", "floor", "target", "tolerance", "span"}

# (file, the comparison or keyword as ast.unparse prints it) -> why it is no verdict cut-off
ALLOWED = {
    ("q3_ig.py", "abs(bl['p_baseline'] - wh['p_baseline']) < 0.0001"):
        "float equality of two model outputs (both constant images standardise to the same input): a "
        "numerical tolerance, not a cut-off on a measure",
    ("pdfimages.py", "depth != 8"): "the PNG format's bit depth that a PDF image stream of 8 bits per component takes "
        "as it is (a file format fact, not a cut-off on a measure)",
    ("render.py", "p < 0.001"): "prints a p-value as '< 0.001' (display precision), decides no verdict",
    ("models.py", "predict_probs(model, p.images[sub]) >= 0.5"):
        "a random-label model's training accuracy at the sigmoid's own 0.5 decision (Keras' accuracy "
        "metric); a model card number, not a verdict",
    ("models.py", "2 <= int(idx) <= replicates(ctx)"): "replicate names start at main-2",
    ("render.py", "cutoff=0.6"): "difflib's similarity for 'did you mean' suggestions of a template typo",
    ("render.py", "cutoff=0.75"): "difflib's similarity for 'did you mean' suggestions of a template typo",
    ("pdfparts.py", "depth <= 4"): "PDF assembly: how deep in WeasyPrint's box tree a top-level section lies",
    ("pdfparts.py", "struct.calcsize('l') == 4"): "the platform's word size (32- or 64-bit) for the library search",
}
# (file, constant) -> why comparing with it decides no verdict
ALLOWED_CONSTANTS = {
    ("figures.py", "MIN_PSNR_DB"): "figure encoding: a JPEG must be this close to the PNG",
    ("figures.py", "MAX_JPEG_SHARE"): "figure encoding: a JPEG must save this share of bytes",
    ("figures.py", "BLANK_LEVEL"): "page layout: the grey level of a blank row between panels",
    ("figures.py", "MIN_GAP_PX"): "page layout: the height of a cut between panels",
    ("pdfparts.py", "STRAY_LINES"): "page layout: the lines of text a part's last page may hold before the part "
                                    "is laid out tighter (a stray tail, not a measure)",
    ("pdfparts.py", "STRAY_FILL"): "page layout: how far down a last page with a figure strip is inked before the "
                                   "part is laid out keeping its last two strips together (not a measure)",
}


def _number(node) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _number(node.operand)
        return None if v is None else -v
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _numeric_constants(tree: ast.Module) -> set[str]:
    """Module-level names bound to a number or a container of numbers only."""
    def numeric(v) -> bool:
        if _number(v) is not None:
            return True
        if isinstance(v, (ast.Tuple, ast.List)):
            return bool(v.elts) and all(numeric(e) for e in v.elts)
        if isinstance(v, ast.Dict):
            return bool(v.values) and all(numeric(e) for e in v.values)
        return False
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and numeric(node.value):
                    out.add(t.id)
                elif isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    out |= {e.id for e, v in zip(t.elts, node.value.elts) if isinstance(e, ast.Name) and numeric(v)}
    return out


def cut_offs(source: str, file: str) -> list[str]:
    """Every cut-off the rule of this module's docstring finds in ``source``."""
    tree = ast.parse(source)
    constants = _numeric_constants(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and all(isinstance(op, OPS) for op in node.ops):
            text = ast.unparse(node)
            operands = [node.left] + node.comparators
            for i, o in enumerate(operands):
                v = _number(o)
                if v is None or v in (0, 1) or (file, text) in ALLOWED:
                    continue
                others = " ".join(ast.unparse(x) for j, x in enumerate(operands) if j != i)
                if isinstance(v, int) and STRUCTURAL.search(others):
                    continue
                bad.append(f"{file}:{node.lineno}: literal {v} in `{text}`")
            names = {n.id for o in operands for n in ast.walk(o) if isinstance(n, ast.Name)}
            for name in sorted(names & constants):
                if (file, name) not in ALLOWED_CONSTANTS:
                    bad.append(f"{file}:{node.lineno}: constant {name} in `{text}`")
        elif isinstance(node, ast.keyword) and node.arg in CUT_KEYWORDS and _number(node.value) is not None:
            if (file, ast.unparse(node)) not in ALLOWED:
                bad.append(f"{file}:{node.value.lineno}: keyword `{ast.unparse(node)}`")
    return bad


def test_no_cut_off_typed_into_report():
    """Catches: a verdict whose cut-off is typed into report/ (``span['lo'] > 0.1``, or a named
    constant ``MIN_SPAN`` compared with), so that it is neither in xaikit.toml nor changeable."""
    found = [b for p in sorted((ROOT / "report").glob("*.py")) for b in cut_offs(p.read_text(), p.name)]
    assert found == []


def test_every_allowance_is_still_used():
    """An allowance whose comparison is gone would let the same text back in unseen."""
    texts = {p.name: p.read_text() for p in (ROOT / "report").glob("*.py")}
    stale = [k for k in ALLOWED if k[1] not in {ast.unparse(n) for n in ast.walk(ast.parse(texts[k[0]]))
                                                 if isinstance(n, (ast.Compare, ast.keyword))}]
    saved = dict(ALLOWED_CONSTANTS)
    try:     # each allowed constant is still compared with: without its allowance the scan flags it
        ALLOWED_CONSTANTS.clear()
        flagged = {(f, b.split("constant ", 1)[1].split(" ", 1)[0]) for f, t in texts.items()
                   for b in cut_offs(t, f) if "constant " in b}
    finally:
        ALLOWED_CONSTANTS.update(saved)
    stale += [k for k in ALLOWED_CONSTANTS if k not in flagged]
    assert stale == []


def test_the_scan_finds_planted_cut_offs():
    src = ("MIN_SPAN = 0.1\nBAND = (0.4, 0.6)\nCELLS = 16\n"
           "a = span['lo'] > 0.1\n"            # a float literal
           "b = e['hi'] < -0.2\n"              # a negated one
           "c = images >= 10\n"                # an integer on a non-structural quantity
           "d = span['lo'] > MIN_SPAN\n"       # a named constant
           "e = BAND[0] <= auc\n"              # a subscripted one
           "f = verdict(x, cut=0.5)\n"         # a cut-off keyword
           "ok1 = diff['lo'] > 0\nok2 = ratio['hi'] < 1\nok3 = len(v) < 2\nok4 = a.ndim == 5\n"
           "ok5 = maps.reshape(CELLS, -1)\n")
    assert [b.split(": ", 1)[0] for b in cut_offs(src, "x.py")] == [f"x.py:{i}" for i in range(4, 10)]


# --- the keys reach the sections that read them, and no model -------------------------------

# key -> (an overridden value, the sections whose key must change)
NEW_KEYS = {
    "verdicts.dice_target": ("0.7", ("q3",)),
    "verdicts.saturation_span": ("0.2", ("q4",)),
    "verdicts.target_auc": ("0.9", ("q2",)),
    "verdicts.target_accuracy": ("0.8", ("q2",)),
    "verdicts.target_sensitivity": ("0.8", ("q2",)),
    "verdicts.target_specificity": ("0.8", ("q2",)),
    "verdicts.performance_bootstrap": ("1000", ("q2",)),
    "verdicts.family_min_train": ("5", ("q2",)),
    "verdicts.random_auc_band": ("0.05", ("q3", "q4", "q5")),    # Q5.1's rule counts Q3.2's and Q4.2's reference too
    "verdicts.control_fit": ("0.8", ("q5",)),
    "attribution.road_steps": ("4", ("q4",)),
    "attribution.errors_per_class": ("20", ("q2",)),
    "attribution.errors_figure_per_class": ("2", ("q2",)),
}


def test_new_keys_enter_section_keys_and_no_model_key():
    """Catches: a verdict key in a model's cache key (an edit of a cut-off would retrain every model),
    or a section that reads a key without declaring it (its cached result would not follow the edit)."""
    from report import models
    from report.registry import SECTIONS
    base = load_config(TOML)
    for key, (value, readers) in NEW_KEYS.items():
        assert key in base.values, key
        other = load_config(TOML, overrides=[f"{key}={value}"])
        for kind, prefixes in models.CONFIG.items():
            assert base.digest(prefixes, models.EXCLUDE) == other.digest(prefixes, models.EXCLUDE), (key, kind)
        for s in SECTIONS:
            if s.name in readers:
                assert base.digest(s.config) != other.digest(s.config), (key, s.name)


# --- a changed key changes its verdict and the prose ------------------------------------------

def _fixture() -> dict:
    return json.loads((ROOT / "tests" / "fixtures" / "answer_variables.json").read_text())


def _render(name: str, numbers: dict, cfg) -> str:
    from report.render import answer_env, answer_variables
    from tests.answer_conditions import render
    env = answer_env()
    return render(env, name, answer_variables(numbers, cfg.as_dict(), cfg.profile))


def test_changing_a_target_changes_the_q2_verdict_and_text():
    """Catches: Q2's target floors read from anywhere but verdicts.target_<metric>."""
    from report.q2_model import performance_target, target_verdict
    fx = _fixture()
    ci = fx["numbers"]["q2"]["test_ci"]["at_val"]
    texts, words = [], []
    # floors at every interval's lower end (met) and above every upper end (missed)
    for floor in (min(ci[m]["lo"] for m in ci if m != "level") - 0.01, 0.999):
        cfg = load_config(TOML, profile=fx["profile"], overrides=[
            f"verdicts.target_{m}={max(floor, 0.5) if m == 'auc' else floor}" for m in ("auc", "accuracy",
                                                                                       "sensitivity", "specificity")])
        numbers = copy.deepcopy(fx["numbers"])
        numbers["q2"]["target"] = target_verdict(ci, performance_target(cfg))
        numbers["q2"]["meets_target"] = numbers["q2"]["target"]["met"]
        words.append(numbers["q2"]["target"]["verdict"])
        texts.append(_render("q2_2.md", numbers, cfg))
    assert words == ["met", "missed"]
    assert "**met**" in texts[0] and "**missed**" in texts[1]


def test_changing_the_dice_target_changes_the_q3_verdict_and_text():
    """Catches: the Dice target of Q3.2 read from anywhere but verdicts.dice_target."""
    from report.measures import dice_verdict
    fx = _fixture()
    hm = fx["numbers"]["q3"]["hand_masks"]
    texts = {}
    for word, target in (("meets", hm["atlas"]["mean"]["lo"] - 0.01), ("misses", hm["atlas"]["mean"]["hi"] + 0.01)):
        cfg = load_config(TOML, profile=fx["profile"], overrides=[f"verdicts.dice_target={target}"])
        numbers = copy.deepcopy(fx["numbers"])
        numbers["q3"]["hand_masks"].update(target=cfg["verdicts.dice_target"],
                                           **dice_verdict(hm["atlas"]["mean"], cfg["verdicts.dice_target"]))
        assert numbers["q3"]["hand_masks"]["target_verdict"] == word
        texts[word] = _render("q3_2.md", numbers, cfg)
    assert "**meets**" in texts["meets"] and "**meets**" not in texts["misses"]


def test_changing_control_fit_changes_the_q5_check_and_text():
    """Catches: Q5.1's control check read from anywhere but verdicts.control_fit (and the random-label
    band from anywhere but verdicts.random_auc_band)."""
    from report.q5_sanity import _summary, as_intended, random_auc_band
    fx = _fixture()
    rows = fx["numbers"]["q5"]["models"]["control"]["rows"]
    lowest = min(r["train_accuracy"] for r in rows)
    texts = []
    for fit in (lowest, 0.999):
        cfg = load_config(TOML, profile=fx["profile"], overrides=[f"verdicts.control_fit={fit}"])
        numbers = copy.deepcopy(fx["numbers"])
        new = [dict(r, ok=as_intended("control", r["train_accuracy"], r["test_auc"], cfg)) for r in rows]
        numbers["q5"]["models"]["control"].update(_summary(new))
        numbers["q5"]["control_fit"] = cfg["verdicts.control_fit"]
        texts.append(_render("q5_1.md", numbers, cfg))
    assert "Every control fits its true labels" in texts[0]
    assert f"0 of {fx['numbers']['q5']['n_seeds']} controls reach" in texts[1]
    narrow = load_config(TOML, overrides=["verdicts.random_auc_band=0.01"])
    assert random_auc_band(narrow) == pytest.approx((0.49, 0.51))
    assert as_intended("random", 0.99, 0.55, load_config(TOML)) and not as_intended("random", 0.99, 0.55, narrow)


def test_new_keys_through_the_builds_own_key_functions(tmp_path):
    """The same on the build's stage keys (report.models.key, report.build.section_key) over a generated
    dataset. Catches: a model key or a section key made from more (or fewer) config keys than declared."""
    from report import models
    from tests.conftest import make_dataset
    from tests.test_staleness import changed, keys
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    base = keys(root, tmp_path / "b")
    for key, (value, readers) in NEW_KEYS.items():
        diff = changed(base, keys(root, tmp_path / "b", [f"{key}={value}"]))
        assert not diff & set(m for m in base if not m.startswith("q")), (key, diff)   # no model
        assert set(readers) <= diff, (key, diff)

"""Mutation testing: apply plausible one-line bugs, one at a time, and see whether the fast tests fail.

Each mutant changes one node of one module (an operator, a comparison, a constant, a boolean
connective, a ``not``, an ``abs``, a min/max) in a scratch copy of the repository; the tests that
exercise that module (a subset of the fast suite, see ``TESTS``) run against it. A mutant is
killed when they fail, error or time out. Survivors are printed with their line, to be pinned by a
test or argued equivalent. Not run in CI (it takes tens of minutes); run it alone:

    .venv/bin/python bench/mutate.py                      # every target, a seeded sample per module
    .venv/bin/python bench/mutate.py --modules xaikit/ig.py --per-module 0   # all mutants of one module
    .venv/bin/python bench/mutate.py --list               # the mutants only, no test runs
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# module -> the fast test files that exercise it (a mutant killed by these is killed by the fast suite)
TESTS = {
    "xaikit/ig.py": ["tests/test_ig.py", "tests/test_oracles.py"],
    "xaikit/baselines.py": ["tests/test_ig.py"],
    "xaikit/scores.py": ["tests/test_ig.py", "tests/test_gradcam.py"],
    "xaikit/similarity.py": ["tests/test_similarity_regions.py", "tests/test_sanity.py", "tests/test_oracles.py"],
    "xaikit/regions.py": ["tests/test_similarity_regions.py", "tests/test_oracles.py", "tests/test_zones.py",
                          "tests/test_gradcam.py"],
    "xaikit/faithfulness.py": ["tests/test_similarity_regions.py", "tests/test_faithfulness.py"],
    "xaikit/road.py": ["tests/test_faithfulness.py"],
    "xaikit/misclassified.py": ["tests/test_errors.py", "tests/test_zones.py", "tests/test_measures.py"],
    "xaikit/gradcam.py": ["tests/test_gradcam.py"],
    "xaikit/metrics.py": ["tests/test_model_train.py", "tests/test_intervals.py"],
    "xaikit/intervals.py": ["tests/test_intervals.py", "tests/test_measures.py", "tests/test_alpha_everywhere.py"],
    "xaikit/sanity.py": ["tests/test_sanity.py", "tests/test_q5_frame.py"],
    "xaikit/randomization.py": ["tests/test_sanity.py"],
    "xaikit/data.py": ["tests/test_data.py", "tests/test_bad_inputs.py"],
    "xaikit/seeds.py": ["tests/test_seeds.py"],
    "xaikit/forward.py": ["tests/test_forward.py"],
    "report/seeds.py": ["tests/test_seeds.py"],
    "report/learned.py": ["tests/test_learned.py", "tests/test_q5_frame.py", "tests/test_answer_conditions.py"],
    "report/pdfparts.py": ["tests/test_pdfparts.py"],
    "report/measures.py": ["tests/test_measures.py", "tests/test_similarity_regions.py", "tests/test_consistency.py",
                           "tests/test_zones.py"],
    "report/maps.py": ["tests/test_maps.py"],
    "report/explained.py": ["tests/test_explained.py"],
    "report/pdfimages.py": ["tests/test_pdfimages.py"],
    "xaikit/config.py": ["tests/test_config.py", "tests/test_engine.py::test_bad_run_settings_are_named"],
}

SWAP_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
              ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SWAP_NAME = {"max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum", "mean": "sum",
             "argmax": "argmin", "argmin": "argmax", "any": "all", "all": "any"}


def _docstring_lines(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.update(range(first.lineno, first.end_lineno + 1))
    return out


def sites(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """(node, description) of every mutable place, in a stable order."""
    skip = _docstring_lines(tree)
    out = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if line is None or line in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BINOP:
            out.append((node, f"{type(node.op).__name__} -> {SWAP_BINOP[type(node.op)].__name__}"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_CMP:
            out.append((node, f"{type(node.ops[0]).__name__} -> {SWAP_CMP[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.BoolOp):
            out.append((node, "and <-> or"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append((node, f"drop {type(node.op).__name__}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append((node, f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            out.append((node, f"{node.value} -> {_new_number(node.value)}"))
        elif isinstance(node, ast.Attribute) and node.attr in SWAP_NAME and isinstance(getattr(node, "ctx", None), ast.Load):
            out.append((node, f".{node.attr} -> .{SWAP_NAME[node.attr]}"))
        elif (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords and
              ((isinstance(node.func, ast.Attribute) and node.func.attr == "abs") or
               (isinstance(node.func, ast.Name) and node.func.id == "abs"))):
            out.append((node, "drop abs"))
    return out


def _new_number(v):
    if v == 0:
        return 1
    if v == 1:
        return 0 if isinstance(v, int) else 2.0
    return v + 1 if isinstance(v, int) else v * 1.5


class _Mutate(ast.NodeTransformer):
    def __init__(self, target: ast.AST):
        self.target = target

    def visit(self, node):
        if node is not self.target:
            return self.generic_visit(node)
        if isinstance(node, ast.BinOp):
            node.op = SWAP_BINOP[type(node.op)]()
        elif isinstance(node, ast.Compare):
            node.ops = [SWAP_CMP[type(node.ops[0])]()] + node.ops[1:]
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            node.value = not node.value
        elif isinstance(node, ast.Constant):
            node.value = _new_number(node.value)
        elif isinstance(node, ast.Attribute):
            node.attr = SWAP_NAME[node.attr]
        elif isinstance(node, ast.Call):
            return node.args[0]
        return node


def mutants(module: str) -> list[tuple[int, int, str]]:
    """(index, line, description) of every mutant of ``module``."""
    tree = ast.parse((ROOT / module).read_text())
    return [(i, n.lineno, d) for i, (n, d) in enumerate(sites(tree))]


def mutated_source(module: str, index: int) -> str:
    tree = ast.parse((ROOT / module).read_text())
    node, _ = sites(tree)[index]
    return ast.unparse(ast.fix_missing_locations(_Mutate(node).visit(tree)))


PRELOAD = ("numpy", "scipy.stats", "scipy.ndimage", "skimage.metrics", "skimage.feature", "skimage.filters",
           "skimage.measure", "skimage.morphology", "skimage.draw", "skimage.transform", "sklearn.metrics",
           "pandas", "matplotlib.figure", "jinja2", "PIL.Image", "tensorflow", "keras", "tf_keras_vis", "pytest")


def run_tests(repo: Path, tests: list[str], timeout: float) -> str:
    """Run ``tests`` in a forked child of this process, which has the heavy libraries imported
    already (TensorFlow alone takes seconds to import): the child imports the project's modules
    fresh from the scratch copy, so it sees the mutant."""
    pid = os.fork()
    if pid == 0:                                    # child
        try:
            signal.alarm(int(timeout))
            os.chdir(repo)
            sys.path.insert(0, str(repo))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1), os.dup2(devnull, 2)
            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests])
        except BaseException:
            code = 99
        os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed (timeout)" if os.WTERMSIG(status) == signal.SIGALRM else "killed (crash)"
    return "survived" if os.WEXITSTATUS(status) == 0 else "killed"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", nargs="*", default=list(TESTS))
    ap.add_argument("--per-module", type=int, default=12, help="seeded sample per module (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, metavar="MODULE#INDEX",
                    help="run just these mutants, e.g. xaikit/ig.py#163 (as printed for survivors)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    plan = []
    if args.only:
        for spec in args.only:
            module, _, index = spec.partition("#")
            found = [m for m in mutants(module) if m[0] == int(index)]
            if not found:
                ap.error(f"no mutant #{index} in {module}")
            plan.append((module, *found[0]))
        args.modules = sorted({p[0] for p in plan})
    for module in ([] if args.only else args.modules):
        ms = mutants(module)
        if args.per_module and len(ms) > args.per_module:
            ms = sorted(random.Random(f"{args.seed}:{module}").sample(ms, args.per_module))
        plan += [(module, *m) for m in ms]
    if args.list:
        for module, i, line, desc in plan:
            print(f"{module}:{line} #{i} {desc}")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # the scratch copy has no ../shared beside it: point the real-sample tests at the real data
    os.environ.setdefault("XAIKIT_SHARED_DATA", str(ROOT.parent / "shared" / "data" / "chest_xray"))
    for name in PRELOAD:
        importlib.import_module(name)
    scratch = Path(tempfile.mkdtemp(prefix="xaikit-mutants-"))
    repo = scratch / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".venv", "build", ".git", "__pycache__",
                                                              ".pytest_cache"))
    results, t0 = [], time.perf_counter()
    try:
        every = sorted({t for m in args.modules for t in TESTS[m]})
        if run_tests(repo, every, args.timeout * 3) != "survived":
            print(f"the tests {every} fail before any mutation; fix them first", file=sys.stderr)
            return 2
        for k, (module, i, line, desc) in enumerate(plan, 1):
            original = (repo / module).read_text()
            (repo / module).write_text(mutated_source(module, i))
            try:
                outcome = run_tests(repo, TESTS[module], args.timeout)
            finally:
                (repo / module).write_text(original)
            results.append({"module": module, "line": line, "index": i, "mutation": desc, "outcome": outcome})
            print(f"[{k}/{len(plan)}] {module}:{line} {desc}: {outcome}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    killed = sum(r["outcome"] != "survived" for r in results)
    print(f"\n{killed} of {len(results)} mutants killed ({killed / max(len(results), 1):.1%}) "
          f"in {time.perf_counter() - t0:.0f} s")
    for r in results:
        if r["outcome"] == "survived":
            print(f"  survived: {r['module']}:{r['line']} #{r['index']} {r['mutation']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

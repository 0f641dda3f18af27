"""Stage keys list their source files by hand; these must cover every project module a stage
imports (transitively), or an edited module would leave a stale result trusted."""

import ast
from pathlib import Path

import pytest

from report import models
from report.registry import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
# imported for the build's machinery, not for what a stage computes
# report/context.py's data key (data.py, config.py, context.py) is part of every stage's key
COVERED = {"xaikit/data.py", "xaikit/config.py"}
MACHINERY = {"report/context.py", "report/artifacts.py", "report/section.py", "report/progress.py",
             "report/preflight.py", "xaikit/errors.py", "xaikit/__init__.py", "report/__init__.py"}


def project_imports(path: Path, seen: set[str] | None = None) -> set[str]:
    """Project files (relative paths) that ``path`` imports, transitively."""
    seen = set() if seen is None else seen
    rel = path.relative_to(ROOT).as_posix()
    if rel in seen:
        return seen
    seen.add(rel)
    if rel in MACHINERY:
        return seen
    package = path.parent.relative_to(ROOT).as_posix().replace("/", ".")
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] not in ("report", "xaikit"):
                continue
            f = ROOT / (name.replace(".", "/") + ".py")
            if f.exists():
                project_imports(f, seen)
    return seen


@pytest.mark.parametrize("section", SECTIONS, ids=[s.name for s in SECTIONS])
def test_section_sources_cover_its_imports(section):
    module = ROOT / "report" / f"{section.run.__module__.split('.')[-1]}.py"
    needed = project_imports(module) - MACHINERY - COVERED
    listed = {Path(p).resolve().relative_to(ROOT).as_posix() for p in section.sources}
    # models are keyed by their own sources; a section that needs a model lists the model
    if section.models:
        needed -= project_imports(ROOT / "report" / "models.py") - {"report/models.py"}
        needed.discard("report/models.py")
    assert needed <= listed, f"{section.name} misses {sorted(needed - listed)}"


def test_model_sources_cover_their_imports():
    needed = project_imports(ROOT / "report" / "models.py") - MACHINERY - COVERED
    listed = {Path(p).resolve().relative_to(ROOT).as_posix() for p in models.SOURCES}
    assert needed <= listed, f"models miss {sorted(needed - listed)}"

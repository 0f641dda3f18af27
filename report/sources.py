"""The source files a stage's key reads, derived from its imports (issue #30, item 4).

A section declares ``sources=sources.of(__file__, *data_files)``: every project module the section's
module imports, transitively, plus the data files its code reads (the hand-drawn lung masks). The same
function backs ``tests/test_sources.py``, so the list is written once, by the imports themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# imported for the build's machinery, not for what a stage computes
MACHINERY = {"report/context.py", "report/artifacts.py", "report/section.py", "report/progress.py",
             "report/preflight.py", "xaikit/errors.py", "xaikit/__init__.py", "report/__init__.py"}
# report/context.py's data key (data.py, context.py) is part of every stage's key
COVERED = {"xaikit/data.py"}


def project_imports(path: Path, seen: set[str] | None = None) -> set[str]:
    """Project files (paths relative to the project) that ``path`` imports, transitively, itself included;
    the machinery's own imports are not followed."""
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


def of(module_file: str | Path, *data_files: Path) -> tuple[Path, ...]:
    """The files a section's key reads: ``module_file`` and every project module it imports
    (transitively; not the machinery's nor the data key's), then ``data_files``."""
    needed = project_imports(Path(module_file).resolve()) - MACHINERY - COVERED
    return tuple(ROOT / p for p in sorted(needed)) + tuple(Path(f) for f in data_files)

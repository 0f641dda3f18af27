"""Stage keys list their source files (derived from the imports by ``report.sources.of``; the models'
list by hand); these must cover every project module a stage imports (transitively), or an edited
module would leave a stale result trusted."""

from pathlib import Path

import pytest

from report import models
from report.registry import SECTIONS
from report.sources import COVERED, MACHINERY, ROOT, project_imports  # the build's own rule (report/sources.py)


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


def test_every_section_derives_its_sources_from_its_imports():
    # catches: a section's source list typed by hand again (and then missing a module it imports later)
    from report import measures, sources
    for section in SECTIONS:
        module = ROOT / "report" / f"{section.run.__module__.split('.')[-1]}.py"
        assert set(section.sources) - {measures.HAND_MASKS} == set(sources.of(module)), section.name

"""The README's Layout section names every module of xaikit/ and report/ (issue #30, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unlisted(layout: str, package: str, files: list[str]) -> list[str]:
    """The modules of ``package`` that the Layout text does not name (``q1_data.py ... q5_sanity.py`` names a range)."""
    named = set(re.findall(r"`([a-z0-9_]+\.py)`", layout))
    span = re.search(r"`q(\d)_\w+\.py` \.\.\. `q(\d)_\w+\.py`", layout) if package == "report" else None
    out = []
    for f in files:
        q = re.match(r"q(\d)_", f)
        if f in named or (span and q and int(span.group(1)) <= int(q.group(1)) <= int(span.group(2))):
            continue
        out.append(f"{package}/{f}")
    return out


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Layout"):]


def test_every_module_is_in_the_layout():
    # catches: a new module that the README's Layout does not name
    layout = _layout()
    for package in ("xaikit", "report"):
        section = layout[layout.index(f"| `{package}/` |"):]
        section = section[:section.index("\n\n")]
        assert unlisted(section, package, sorted(p.name for p in (ROOT / package).glob("*.py"))) == []


def test_the_check_finds_a_missing_module():
    # catches: a check that passes whatever the text says
    assert unlisted("| `maps.py` | x |", "report", ["maps.py", "new.py"]) == ["report/new.py"]
    assert unlisted("`q1_data.py` ... `q5_sanity.py`", "report", ["q3_ig.py", "q9_more.py"]) == ["report/q9_more.py"]

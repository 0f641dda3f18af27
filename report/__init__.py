"""The report: one module per question, the build that decides what is stale, and the renderer.

``SOURCES_AT_START`` holds the project's Python sources (``report/*.py``, ``xaikit/*.py``) as
this process first read them, before any other project module was imported. Stage keys hash
these bytes (:func:`report.artifacts.source_digest`), not the files as they are later: a source
edited while a build runs would otherwise be hashed in its new form while the old code, already
imported, computes the stage, and the next build would trust that result.
"""

from pathlib import Path as _Path

_ROOT = _Path(__file__).resolve().parent.parent
SOURCES_AT_START = {p: p.read_bytes() for folder in ("report", "xaikit") for p in sorted((_ROOT / folder).glob("*.py"))}

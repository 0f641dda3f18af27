"""Atomic writes and content hashing for everything under build/."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def now() -> str:
    """The local time with its UTC offset, to the minute: when a stage's result was computed."""
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully written ``tmp_dir`` into place at ``final`` (removing an old one first)."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp_dir, final)


def read_json(path: Path) -> Any | None:
    """JSON content, or None when missing or unreadable (a half-written file is never trusted)."""
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def source_digest(paths: list[Path], at_start: dict | None = None) -> str:
    """Hash of the content of source files (their text, not their timestamps): a Python source of
    the project as this process read it at start (``report.SOURCES_AT_START``, the code that
    runs), any other file as it is now."""
    if at_start is None:
        from . import SOURCES_AT_START as at_start
    h = hashlib.sha256()
    for p in sorted(set(Path(p) for p in paths)):
        h.update(p.name.encode())
        data = at_start.get(p.resolve())
        h.update(p.read_bytes() if data is None else data)
    return h.hexdigest()[:16]

"""Progress bars (tqdm on stderr) for the long loops of the build."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def bar(desc: str, total: int, unit: str = "it"):
    """Yields a callback ``update(n)`` for xaikit functions that accept ``progress``."""
    with tqdm(total=total, desc=f"[xaikit] {desc}", unit=unit, file=sys.stderr, leave=False,
              mininterval=1.0, disable=None) as t:
        yield t.update

"""Turn project errors into one line on stderr and exit status 2 (no traceback)."""

from __future__ import annotations

import sys
from functools import wraps

from xaikit.errors import XaikitError


def friendly(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XaikitError as exc:
            print(f"xaikit: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("xaikit: interrupted; finished artifacts are kept, partial ones were not written",
                  file=sys.stderr)
            raise SystemExit(130) from None
    return wrapper

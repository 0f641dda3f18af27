"""Turn project errors into one line on stderr and exit status 2 (no traceback).

SIGTERM is handled like Ctrl-C: the build stops; every artifact is written atomically, so
nothing half-written is left where a later build would trust it.
"""

from __future__ import annotations

import signal
import sys
from functools import wraps

from xaikit.errors import XaikitError


def _terminate(signum, frame):
    raise KeyboardInterrupt


def friendly(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return fn(*args, **kwargs)
        except XaikitError as exc:
            print(f"xaikit: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("xaikit: interrupted; finished artifacts are kept, partial ones were not written",
                  file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
    return wrapper

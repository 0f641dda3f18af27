"""Turn project errors into one line on stderr and exit status 2 (no traceback).

SIGINT and SIGTERM stop the build: every artifact is written atomically, so nothing
half-written is left where a later build would trust it. The SIGINT handler is installed
explicitly: a background job of a non-interactive shell inherits SIGINT as ignored, and
Python then installs none, so Ctrl-C / ``kill -INT`` would do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from functools import wraps

from xaikit.errors import XaikitError


def _terminate(signum, frame):
    raise KeyboardInterrupt


def quiet(verbose: bool) -> None:
    """Keep TensorFlow's log lines and Keras' harmless dataset warning out of the normal
    output (``--verbose`` keeps them).

    Two sources: TensorFlow's C++ logging (absl's "All log messages before
    absl::InitializeLog()", the oneDNN and CPU-feature notes), silenced by
    ``TF_CPP_MIN_LOG_LEVEL=3`` set before TensorFlow is imported; and its Python logger
    ("WARNING:tensorflow:... triggered tf.function retracing"), set to ERROR here. oneDNN
    itself stays on (``TF_ENABLE_ONEDNN_OPTS`` is not touched: turning it off slows training).
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed.*")


def friendly(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        previous = signal.signal(signal.SIGTERM, _terminate)
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
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
            signal.signal(signal.SIGINT, previous_int)
    return wrapper

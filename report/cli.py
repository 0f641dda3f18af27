"""Turn project errors into one line on stderr and exit status 2 (no traceback).

SIGINT and SIGTERM stop the build: every artifact is written atomically, so nothing
half-written is left where a later build would trust it. The SIGINT handler is installed
explicitly: a background job of a non-interactive shell inherits SIGINT as ignored, and
Python then installs none, so Ctrl-C / ``kill -INT`` would do nothing.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import signal
import sys
import warnings
from contextlib import contextmanager
from functools import wraps

from xaikit.errors import XaikitError


def _terminate(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def silenced_fd2():
    """Send file descriptor 2 (what C/C++ code writes as stderr) to /dev/null for the block,
    then restore it; Python's own ``sys.stderr`` is flushed on both sides."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _SilentLoader(importlib.abc.Loader):
    """Wraps a module's loader: the module's body runs with file descriptor 2 silenced."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with silenced_fd2():
            self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader    # the module looks as usual

    def __getattr__(self, name):            # get_resource_reader, is_package, ... as the real loader
        return getattr(self._loader, name)


class QuietImport(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder that imports the named top-level modules with file descriptor 2
    silenced. TensorFlow 2.21 writes absl's "All log messages before absl::InitializeLog()" and
    the oneDNN note from C++ while its shared libraries load, before it reads
    ``TF_CPP_MIN_LOG_LEVEL`` (on CPUs where oneDNN's custom operations are on, e.g. with
    AVX-512), so only the file descriptor can keep them out. Nothing is imported early: the
    guard acts when (and if) the build first imports TensorFlow."""

    def __init__(self, modules: tuple[str, ...]):
        self.modules = modules

    def find_spec(self, name, path=None, target=None):
        if name not in self.modules:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, QuietImport) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(spec.loader, _SilentLoader):
                    spec.loader = _SilentLoader(spec.loader)
                return spec
        return None


NOISY_IMPORTS = ("tensorflow",)


def quiet(verbose: bool, modules: tuple[str, ...] = NOISY_IMPORTS) -> None:
    """Keep TensorFlow's log lines and Keras' harmless dataset warning out of the normal
    output (``--verbose`` keeps them).

    Three sources: what TensorFlow's C++ code writes while it is imported (absl's notice and the
    oneDNN note), silenced at the file-descriptor level by :class:`QuietImport`; its later C++
    logging (CPU-feature notes), silenced by ``TF_CPP_MIN_LOG_LEVEL=3`` set before the import; and
    its Python logger ("WARNING:tensorflow:... triggered tf.function retracing"), set to ERROR
    here. oneDNN itself stays on (``TF_ENABLE_ONEDNN_OPTS`` is not touched: turning it off slows
    training).
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if not any(isinstance(f, QuietImport) and f.modules == modules for f in sys.meta_path):
        sys.meta_path.insert(0, QuietImport(modules))
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

"""A default build prints no TensorFlow, absl or oneDNN line; --verbose shows them."""

import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT, make_dataset

# What TensorFlow prints when left alone: absl's pre-init notice, C++ log lines (I0000/W0000
# ... file.cc:NN]), the oneDNN and CPU-feature notes, and its Python logger's "WARNING:tensorflow".
TF_NOISE = re.compile(r"absl::InitializeLog|oneDNN|cpu_feature_guard|rebuild TensorFlow|"
                      r"^[IWE]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\]|WARNING:tensorflow|WARNING:absl")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return dict(env, **extra)


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if TF_NOISE.search(line)]


PROBE = ("import sys; from report.cli import quiet; quiet({verbose}); import tensorflow as tf; "
         "import keras; tf.get_logger().warning('probe from the tensorflow logger'); "
         "tf.constant(1.0) + 1.0")


def test_tensorflow_lines_show_only_with_verbose():
    # catches: TF_CPP_MIN_LOG_LEVEL set after TensorFlow is imported, or the Python
    # "tensorflow" logger left at WARNING (tf.function retracing notes)
    loud = subprocess.run([sys.executable, "-c", PROBE.format(verbose=True)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=_env())
    assert loud.returncode == 0, loud.stderr
    assert _noise(loud.stderr), "the pattern should match TensorFlow's own lines"
    calm = subprocess.run([sys.executable, "-c", PROBE.format(verbose=False)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=_env())
    assert calm.returncode == 0, calm.stderr
    assert _noise(calm.stdout + calm.stderr) == []


GUARD = ("import os, sys; sys.path.insert(0, {folder!r}); from report.cli import quiet; "
         "quiet({verbose}, modules=('noisy_probe',)); import noisy_probe; "
         "os.write(2, b'after the import\\n')")


@pytest.mark.parametrize("verbose", [False, True])
def test_the_import_guard_silences_file_descriptor_2_on_any_cpu(tmp_path, verbose):
    # catches: the guard not installed (or installed after the import), fd 2 not restored after
    # the import (later errors would vanish), or --verbose silencing too. TensorFlow writes its
    # start-up lines from C++ only on some CPUs; this planted module writes to fd 2 on every CPU.
    (tmp_path / "noisy_probe.py").write_text("import os\nos.write(2, b'planted line from C\\n')\n")
    r = subprocess.run([sys.executable, "-c", GUARD.format(folder=str(tmp_path), verbose=verbose)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env())
    assert r.returncode == 0, r.stderr
    assert ("planted line from C" in r.stderr) == verbose
    assert "after the import" in r.stderr


def test_a_default_stage_run_prints_no_tensorflow_line(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 6, "test": 2}, size=32)
    r = subprocess.run([sys.executable, "-m", "invoke", "train", "--data", str(root),
                        "--build", str(tmp_path / "build"), "--set", "data.image_size=32",
                        "--set", "train.epochs=1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert "model main: trained" in r.stderr
    assert _noise(r.stdout + r.stderr) == []

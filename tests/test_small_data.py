"""Small and odd datasets: the report says "cannot tell" where the data do not allow a verdict,
never a traceback; the build remembers its dataset (#33)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, make_dataset
from .test_cli_e2e import SMALL


def _invoke(*args, env=None):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env=env)


def _collapsed_model(path: Path, size: int) -> Path:
    """The study's CNN whose logits' bias makes it call every image PNEUMONIA (P = 1.0 in float32)."""
    from xaikit.model import build_cnn
    model = build_cnn(size, 1, seed=0)
    dense = model.get_layer("logits")
    kernel, _ = dense.get_weights()
    dense.set_weights([kernel * 0.0, np.array([0.0, 40.0], np.float32)])
    model.save(path)
    return path


@pytest.mark.e2e
def test_a_model_that_calls_everything_pneumonia_gives_cannot_tell(tmp_path):
    # catches: consistency (Q3.3/Q4.3) raising "needs >= 2 maps per class" when every explained image is
    # decided as one class, the randomization test raising on flat maps, Q2.3 without errors crashing the
    # render: each was a traceback on a small dataset
    data = make_dataset(tmp_path / "d", per_class={"train": 10, "test": 4}, size=48)
    model = _collapsed_model(tmp_path / "collapsed.keras", 48)
    build = tmp_path / "build"
    r = _invoke("build-report", "--quick", "--data", str(data), "--build", str(build), "--model", str(model),
                "--no-pdf", *[a for kv in SMALL for a in ("--set", kv)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    numbers = json.loads((build / "quick" / "numbers.json").read_text())
    for q in ("q3", "q4"):
        c = numbers[q]["consistency"]
        assert c["told"] is False and "cannot tell" in c["level"], c["level"]
        assert "0 NORMAL" in c["level"]
    html = (build / "quick" / "report.html").read_text()
    assert "cannot tell" in html


def test_the_build_remembers_its_dataset(tmp_path):
    # catches: a second command without --data (and without XAIKIT_DATA) failing with "data folder ...
    # does not exist" after a build that found the dataset, or a remembered path silently preferred
    # over --data
    data = make_dataset(tmp_path / "d", per_class={"train": 6, "test": 2}, size=32)
    build = tmp_path / "build"
    env = {k: v for k, v in __import__("os").environ.items() if k != "XAIKIT_DATA"}
    first = _invoke("eda", "--data", str(data), "--build", str(build), "--set", "data.image_size=32", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((build / "dataset.json").read_text())["path"] == str(data.resolve())
    again = _invoke("eda", "--build", str(build), "--set", "data.image_size=32", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "remembered from" in again.stderr and ": section q1" not in again.stderr
    other = make_dataset(tmp_path / "e", per_class={"train": 6, "test": 2}, size=32, seed=1)
    third = _invoke("eda", "--data", str(other), "--build", str(build), "--set", "data.image_size=32", env=env)
    assert third.returncode == 0 and "remembered" not in third.stderr and ": section q1" in third.stderr
    # a changed dataset at the remembered path is named, and its stages are recomputed
    (other / "train" / "NORMAL" / "IM-0000-0001.jpeg").unlink()
    fourth = _invoke("eda", "--build", str(build), "--set", "data.image_size=32", env=env)
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    assert "changed since the last build" in fourth.stderr and ": section q1" in fourth.stderr

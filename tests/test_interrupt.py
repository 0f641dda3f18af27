"""Interrupting a real build leaves nothing half-written that a later build would trust."""

import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, make_dataset

SETTINGS = ["data.image_size=48", "train.epochs=150", "train.replicates=1", "random_labels.subset_size=16",
            "random_labels.max_epochs=2", "attribution.eval_per_class=5", "attribution.ig_steps=4",
            "attribution.ig_max_steps=4", "attribution.noise_draws=1", "attribution.faithfulness_steps=2"]
LOCAL = ["run.engine=local"]          # in this process: its epoch lines tell when training is under way


def build_cmd(root, build, settings=(*SETTINGS, *LOCAL)):
    code = ("import sys; from report.build import build_report; from report.cli import friendly; "
            f"friendly(build_report)(data={str(root)!r}, overrides={list(settings)!r}, build={str(build)!r}, pdf=False)")
    return [sys.executable, "-c", code]


def _interrupt_when(proc, cue, sig, seconds: float) -> str:
    """Send ``sig`` to ``proc`` at its first stderr line for which ``cue(line)`` holds (within ``seconds``);
    wait for it to exit with status 130 saying "interrupted" and no traceback; return what it
    printed after the signal."""
    seen = []
    deadline = time.time() + seconds
    for line in proc.stderr:
        seen.append(line)
        if cue(line):
            proc.send_signal(sig)
            break
        assert time.time() < deadline, "".join(seen)
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest and "Traceback" not in rest
    return rest


def _ignore_sigint():
    """What a non-interactive shell does to a background job: SIGINT starts out ignored, and
    Python then installs no KeyboardInterrupt handler of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.e2e
@pytest.mark.parametrize("sig,background", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                            (signal.SIGINT, True)])
def test_interrupt_during_training_then_resume(tmp_path, sig, background):
    # catches: SIGINT handled only when inherited as default (background jobs ignore it)
    root = make_dataset(tmp_path / "d", per_class={"train": 10, "test": 6})
    build = tmp_path / "build"
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(build_cmd(root, build), cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ignore_sigint if background else None)
    _interrupt_when(proc, lambda line: line.startswith("epoch 3/"), sig, 240)
    assert not (build / "models" / "main.keras").exists()
    assert not (build / "models" / "main.json").exists()
    assert not (build / "report.html").exists()
    assert not list(build.rglob("*.tmp")) and not list(build.rglob(".*.tmp*"))
    assert (build / "sections" / "q1" / "result.json").exists()   # finished before the signal

    again = subprocess.run(build_cmd(root, build), cwd=ROOT, capture_output=True, text=True,
                           env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = [l for l in again.stderr.splitlines() if "stages:" in l][0]
    assert "q1 reused" in summary and "model main computed" in summary
    assert (build / "report.html").exists()


@pytest.mark.e2e
def test_interrupt_cancels_the_ray_tasks_and_a_rerun_resumes_from_finished_models(tmp_path):
    # catches: Ctrl-C that leaves Ray tasks (or the embedded instance) running after the build has
    # exited, a model that was still training written anyway, finished models trained again
    root = make_dataset(tmp_path / "d", per_class={"train": 10, "test": 6})
    build = tmp_path / "build"
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(build_cmd(root, build, SETTINGS), cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    # random-1 (2 epochs) finishes while main (150 epochs) trains
    _interrupt_when(proc, lambda line: "model random-1: trained" in line, signal.SIGINT, 300)
    time.sleep(2)
    left = subprocess.run(["ps", "-o", "pid=,args=", "-s", str(proc.pid)], capture_output=True, text=True).stdout
    assert left.strip() == "", left          # no raylet, no worker of the build's session survives it
    assert (build / "models" / "random-1.json").exists()
    assert not (build / "models" / "main.keras").exists() and not (build / "models" / "main.json").exists()
    assert not list(build.rglob("*.tmp")) and not list(build.rglob(".*.tmp*"))

    again = subprocess.run(build_cmd(root, build, SETTINGS), cwd=ROOT, capture_output=True, text=True,
                           env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = [l for l in again.stderr.splitlines() if "stages:" in l][0]
    assert "model random-1 computed" not in summary and "model main computed" in summary
    assert (build / "report.html").exists()

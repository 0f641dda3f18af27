"""Models trained as Ray tasks (report/engine.py): placement does not change a model, a killed
worker's task is retried, and a cluster of two nodes builds the same report as the embedded
instance."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, make_dataset
from .test_cli_e2e import SMALL

RAY = Path(sys.executable).with_name("ray")
TINY = ["data.image_size=32", "train.epochs=2", "train.replicates=1", "random_labels.subset_size=8",
        "random_labels.max_epochs=2"]


def test_run_keys_enter_no_stage_key(tmp_path):
    # catches: [run] (threads, engine, retries) entering a model's or the data's key, so that
    # changing how the build runs would retrain every model
    from report import models
    from report.build import make_context
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    a = make_context(str(root), None, ["data.image_size=32"], None, tmp_path / "build")
    b = make_context(str(root), None, ["data.image_size=32", "run.threads=2", "run.engine=local",
                                       "run.retries=0"], None, tmp_path / "build")
    assert a.cfg["run.threads"] == 1 and b.cfg["run.threads"] == 2
    assert a.data_key == b.data_key
    assert [models.key(a, m) for m in models.names(a)] == [models.key(b, m) for m in models.names(b)]


@pytest.mark.parametrize("override, fragment", [
    ("run.threads=0", "expects a value >= 1"), ("run.engine=spark", "expects one of"),
    ("run.retries=many", "expects int"), ("run.nodes=3", "unknown config key 'run.nodes'")])
def test_bad_run_settings_are_named(override, fragment):
    from report.preflight import read_config
    from xaikit.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        read_config(None, [override])
    assert fragment in str(info.value)


def test_unreachable_cluster_is_one_line_before_tensorflow(tmp_path):
    # catches: a wrong --cluster address found only after decoding and importing TensorFlow, or
    # Ray's minute of connection retries and its traceback
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    with socket.socket() as s:            # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "invoke", "train", "--data", str(root),
                        "--build", str(tmp_path / "build"), "--cluster", f"127.0.0.1:{port}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    errors = [l for l in r.stderr.splitlines() if not l.startswith("import time:")]
    assert len(errors) == 1 and errors[0].startswith("xaikit: error: Ray cluster at 127.0.0.1:"), errors
    assert "tensorflow" not in r.stderr and "ray" not in [l.split("|")[-1].strip() for l in r.stderr.splitlines()]


def _weights(path: Path) -> list[np.ndarray]:
    import keras
    return keras.saving.load_model(path, safe_mode=True, compile=False).get_weights()


def test_a_key_has_the_same_weights_alone_and_beside_other_tasks(tmp_path, monkeypatch):
    # catches: a model whose weights depend on what trained beside it or before it in the same
    # (reused) Ray worker: TensorFlow threads not pinned, Keras or RNG state leaking between tasks;
    # and a map job (report.maps.prefetch) whose set differs from the one made here, or is not used
    from report.build import make_context, run_stage
    root = make_dataset(tmp_path / "d", per_class={"train": 10, "test": 4})
    run_stage("main", data=str(root), overrides=TINY, build=tmp_path / "alone")
    # beside: random-1 and random-2 start first (2 CPUs, 1 thread each); main waits for a slot and
    # runs in a worker that already trained a model
    ctx = make_context(str(root), None, TINY, None, tmp_path / "beside")
    from report import engine
    from report.build import _load_model, plan
    with engine.running(ctx, _load_model) as eng:
        wanted = ["random-1", "random-2", "main"]
        eng.submit(ctx, wanted, plan(ctx, wanted, ()))
        for name in wanted:
            ctx.model(name)
        from report import maps
        from xaikit.pipeline import to_float
        x, target = to_float(ctx.prepared().images[:3]), np.array([0, 1, 0])
        assert maps.prefetch(ctx, "random-1", "ig", "blurred", x, target)         # on a worker, 1 thread
        made_here = maps.compute(ctx, ctx.model("random-1")[0], "ig", "blurred", x, target, True)
        again = eng.result(eng.submit_maps(ctx, "random-1", [("ig", "blurred", x, target, True)]))[0]
        monkeypatch.setattr(maps, "compute", lambda *a, **k: pytest.fail("the job's set was made again here"))
        job = maps.get(ctx, "random-1", "ig", "blurred", x, target)
        for f in ("maps", "gap", "f_image", "f_baseline"):
            np.testing.assert_array_equal(getattr(job, f), again[f])            # jobs: bit for bit
            np.testing.assert_allclose(getattr(job, f), getattr(made_here, f), rtol=1e-4, atol=1e-6)   # rounding
    alone, beside = tmp_path / "alone" / "models", tmp_path / "beside" / "models"
    card_a, card_b = (json.loads((d / "main.json").read_text()) for d in (alone, beside))
    assert card_a["key"] == card_b["key"] and card_a["threads"] == card_b["threads"] == 1
    assert card_a["node"]["ray_node_id"] and card_a["computed_at"]
    for u, v in zip(_weights(alone / "main.keras"), _weights(beside / "main.keras"), strict=True):
        assert np.array_equal(u, v)


def _descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_killed_worker_is_retried_and_nothing_half_written_is_trusted(tmp_path):
    # catches: a task lost with its worker (max_retries not set, or the retry's result dropped), a
    # model file written by a worker or before its card's key is checked, leftovers of the killed
    # attempt under build/models
    from report.build import run_stage
    root = make_dataset(tmp_path / "d", per_class={"train": 10, "test": 4})
    build = tmp_path / "build"
    killed: list[int] = []

    def kill_first_attempt():
        deadline = time.time() + 180
        while time.time() < deadline and not killed:
            for pid in _descendants(os.getpid()):       # only the workers of this test's Ray instance
                if _cmdline(pid).startswith("ray::xaikit-train-main"):
                    time.sleep(4)                        # TensorFlow imported, training under way
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_first_attempt, daemon=True)
    killer.start()
    run_stage("main", data=str(root), overrides=[*TINY[:1], "train.epochs=40", *TINY[2:]], build=build)
    killer.join(timeout=5)
    assert killed, "the training task's worker was never seen"
    card = json.loads((build / "models" / "main.json").read_text())
    assert card["node"]["pid"] != killed[0]              # trained again, by another worker
    assert card["epochs_run"] == 40
    assert sorted(p.name for p in (build / "models").iterdir()) == ["main.json", "main.keras"]
    assert _weights(build / "models" / "main.keras")


# --------------------------------------------------------------------------- a two-node cluster


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def ray_cluster(tmp_path):
    """A head and a second node on 127.0.0.1, one CPU each, token authentication on; each
    ``ray start --block`` in its own process group, which is killed at the end (not ``ray
    stop``, which would stop every Ray instance of this user on the machine)."""
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_USAGE_STATS_ENABLED="0", TF_CPP_MIN_LOG_LEVEL="3")
    temp = Path("/tmp") / f"xr-{secrets.token_hex(3)}"      # short: Ray's socket paths have a length limit
    procs = []
    try:
        gcs, client, dash, *rest = _free_ports(11)
        head = [str(RAY), "start", "--block", "--head", f"--port={gcs}", "--node-ip-address=127.0.0.1",
                "--num-cpus=1", "--include-dashboard=false", f"--dashboard-port={dash}",
                f"--ray-client-server-port={client}", f"--temp-dir={temp}", "--disable-usage-stats"]
        per_node = [(f"--node-manager-port={rest[0]}", f"--object-manager-port={rest[1]}",
                     f"--dashboard-agent-listen-port={rest[2]}", f"--metrics-export-port={rest[3]}"),
                    (f"--node-manager-port={rest[4]}", f"--object-manager-port={rest[5]}",
                     f"--dashboard-agent-listen-port={rest[6]}", f"--metrics-export-port={rest[7]}")]
        worker = [str(RAY), "start", "--block", f"--address=127.0.0.1:{gcs}", "--node-ip-address=127.0.0.1",
                  "--num-cpus=1", "--disable-usage-stats"]
        log = open(tmp_path / "ray-start.log", "w")
        for cmd in (head + list(per_node[0]), worker + list(per_node[1])):
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.time() + 120
            while not _cluster_nodes(env, gcs) >= len(procs):
                assert time.time() < deadline, (tmp_path / "ray-start.log").read_text()[-3000:]
                assert all(p.poll() is None for p in procs), (tmp_path / "ray-start.log").read_text()[-3000:]
                time.sleep(1)
        yield f"127.0.0.1:{gcs}", env
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:                     # what ignored SIGTERM (gcs_server may) is in the group too
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _cluster_nodes(env: dict, gcs: int) -> int:
    r = subprocess.run([str(RAY), "status", f"--address=127.0.0.1:{gcs}"], env=env, capture_output=True,
                       text=True, timeout=60)
    return r.stdout.count("node_") if r.returncode == 0 else 0


# the end-to-end test's small settings (tests/test_cli_e2e.py) on its real sample, with fewer models and draws
CLUSTER_BUILD = [*SMALL, "train.replicates=1", "random_labels.seeds=2", "random_labels.whole_split=false",
                 "attribution.bootstrap=100", "sanity.bootstrap=100", "sanity.cascade_draws=2",
                 "sanity.cascade_images_per_class=1", "verdicts.performance_bootstrap=100"]


TIMES = {"provenance", "seconds", "minutes", "seconds_mean"}      # how long stages took, not what they computed


def _computed(numbers):
    """numbers.json without the stages' durations, NaN as a string (NaN != NaN)."""
    if isinstance(numbers, dict):
        return {k: _computed(v) for k, v in numbers.items() if k not in TIMES}
    if isinstance(numbers, list):
        return [_computed(v) for v in numbers]
    return "nan" if isinstance(numbers, float) and numbers != numbers else numbers


@pytest.mark.e2e
def test_a_cluster_of_two_nodes_builds_the_embedded_build(tmp_path, ray_cluster, real_sample):
    # catches: the project's code or the decoded images not reaching a worker on another node, a
    # result written by a worker instead of the driver, token authentication turned off to connect,
    # and any number that depends on where a model trained
    address, env = ray_cluster
    numbers = {}
    for how, extra in (("embedded", []), ("cluster", ["--cluster", address])):
        cmd = [sys.executable, "-m", "invoke", "build-report", "--data", str(real_sample), "--quick", "--no-pdf",
               "--build", str(tmp_path / how), *extra]
        for item in CLUSTER_BUILD:
            cmd += ["--set", item]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                           env=env if how == "cluster" else {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"})
        assert r.returncode == 0, r.stderr[-3000:]
        assert ("cluster 127.0.0.1" in r.stderr) == (how == "cluster")
        numbers[how] = _computed(json.loads((tmp_path / how / "quick" / "numbers.json").read_text()))
    cards = [json.loads(p.read_text()) for p in sorted((tmp_path / "cluster" / "quick" / "models").glob("*.json"))]
    assert len({c["node"]["ray_node_id"] for c in cards}) == 2      # both nodes trained models
    assert numbers["cluster"] == numbers["embedded"]


def test_the_stage_line_estimates_from_recorded_costs(tmp_path):
    # catches: a time left that ignores the costs recorded by the last build (model cards, section
    # results), or models running side by side counted one after the other
    from report.progress import Stages, recorded_seconds
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "main.json").write_text(json.dumps({"seconds": 500.0}))
    (tmp_path / "models" / "random-1.json").write_text(json.dumps({"seconds": 60.0, "task_seconds": 70.0}))
    (tmp_path / "sections" / "q2").mkdir(parents=True)
    (tmp_path / "sections" / "q2" / "result.json").write_text(json.dumps({"seconds": 120.0}))
    assert recorded_seconds(tmp_path, "model main") == 500.0
    assert recorded_seconds(tmp_path, "model main-2") == 500.0          # its family's cost
    assert recorded_seconds(tmp_path, "model random-4") == 70.0
    assert recorded_seconds(tmp_path, "model random-all") is None
    assert recorded_seconds(tmp_path, "section q2") == 120.0
    lines: list[str] = []
    stages = Stages({s: recorded_seconds(tmp_path, s) for s in
                     ("model main", "model main-2", "model random-4", "section q2")}, say=lines.append)
    stages.parallel(2, ["model main", "model main-2", "model random-4"])
    assert lines[-1].startswith("stage 1 of 4: 3 models submitted, 2 at a time")
    assert "about 11 min left" in lines[-1]                # (500 + 500 + 70) / 2 + 120 s
    stages.finish("model random-4", 70.0, "model random-4: trained")
    stages.start("section q2")
    assert lines[-1] == "stage 2 of 4: section q2 (models still training: 2); about 10 min left"
    stages.waits("section q3", ["model random-4", "model main-2"])     # random-4 is done, main-2 is not
    assert lines[-1].startswith("stage 2 of 4: section q3 waits for 1 model still training (main-2); about")
    said = len(lines)
    stages.waits("section q4", ["model random-4"])                    # nothing to wait for: nothing said
    assert len(lines) == said

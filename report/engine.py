"""Where the models train: Ray tasks (the default) or this process, one after the other.

With ``[run] engine = "ray"`` the build submits every stale model it will need at once, at the
start, and the models train side by side while the sections that need none run here. By default
an embedded local Ray instance is started for the build (and stopped after it); ``--cluster
ADDRESS`` (or ``$XAIKIT_RAY_ADDRESS``) uses an existing cluster instead. The project's code is
shipped to the workers (``runtime_env`` ``working_dir``, without build/, .venv/, data/), the
decoded images through Ray's object store, so a worker needs neither the dataset nor build/.

A task returns the saved ``.keras`` bytes and the model card; only this process (the driver)
writes ``build/models/``, each file atomically, once the card's key equals the key computed
here: nothing a worker half-wrote can be trusted, and a source edited while the build runs
gives a key mismatch, not a model under the wrong key. A task whose worker died is run again
(``[run] retries``); Ctrl-C cancels the tasks, and the next build resumes from the models
already written (their keys match).

Each task pins TensorFlow's intra- and inter-op threads to ``[run] threads`` before TensorFlow
starts in that worker (a worker that already runs TensorFlow with another count refuses the
task), so a model's weights do not depend on the node or on what trained beside it. The card
records the threads, the node (host name, Ray node id), the worker's pid and when.

``engine = "local"`` keeps the previous behaviour: each model trains in this process when a
section first needs it (TensorFlow's own thread count).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from xaikit.errors import XaikitError

from . import artifacts
from .context import ROOT, Context, log
from .progress import Stages

ADDRESS_ENV = "XAIKIT_RAY_ADDRESS"
EXCLUDES = ["build/", ".venv/", "data/", ".git", "__pycache__/", "*.pyc", ".pytest_cache/"]


class ClusterError(XaikitError):
    """A Ray cluster that cannot be reached or a task that failed for good."""


def cluster_address(cli_value: str | None) -> str | None:
    """``--cluster``, else ``$XAIKIT_RAY_ADDRESS``, else None (an embedded local instance)."""
    return cli_value or os.environ.get(ADDRESS_ENV) or None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """One line, before Ray tries (and retries for a minute), when nothing listens at HOST:PORT."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--cluster {address!r}: expected HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"Ray cluster at {address} cannot be reached ({exc.strerror or exc}); expected a "
                           f"head node started with `ray start --head --port={port}`") from None


# ----------------------------------------------------------------------------- the task


def _pin_threads(threads: int) -> None:
    """TensorFlow's thread pools, fixed before TensorFlow starts in this worker."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:          # TensorFlow already started in this (reused) worker
        now = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
        if now != (threads, threads):
            raise RuntimeError(f"this worker's TensorFlow already runs with {now} threads; "
                               f"expected {threads}") from None


def train_task(spec: dict, prepared, *upstream_cards):
    """Runs on a Ray worker: train one model into a scratch build folder and return
    (the .keras file's bytes, its card). ``upstream_cards`` are the cards of
    ``spec["upstream"]`` (control-i reads random-i's epoch count); Ray resolves them (they are
    top-level arguments) once those tasks have finished."""
    import tempfile

    import ray

    t0 = time.perf_counter()
    _pin_threads(spec["threads"])
    import keras

    from . import models
    cfg = _config(spec)
    upstream = dict(zip(spec["upstream"], upstream_cards))
    with tempfile.TemporaryDirectory(prefix="xaikit-task-") as tmp:
        ctx = Context(cfg, spec["listing"], Path(tmp), strategy_name=spec["strategy"],
                      model_loader=models.get, _prepared=prepared,
                      _models={n: (None, card) for n, card in upstream.items()})
        _, card = models.get(ctx, spec["name"])
        data = models.paths(ctx, spec["name"])[0].read_bytes()
    keras.backend.clear_session()
    context = ray.get_runtime_context()
    card.update(threads=spec["threads"], computed_at=artifacts.now(),
                task_seconds=time.perf_counter() - t0,
                node={"host": socket.gethostname(), "ray_node_id": context.get_node_id(), "pid": os.getpid()})
    return data, card


def _config(spec: dict):
    """The build's config inside a task, from its spec (:meth:`RayEngine._spec`)."""
    from types import MappingProxyType

    from xaikit.config import Config
    return Config(MappingProxyType(spec["config"]), spec["profile"])


def maps_task(spec: dict, prepared, model_bytes: bytes, requests: list) -> list[dict]:
    """Runs on a Ray worker: load one model from its ``.keras`` bytes (``model_bytes`` may be the
    bytes a training task of this build returns: Ray runs this task once that one has finished) and
    compute each requested map set, ``(method, setting, x, target, adaptive)``, with this build's
    config (report.maps.compute); returns each as a dict of arrays. The driver keys and writes them."""
    import tempfile

    _pin_threads(spec["threads"])
    import keras

    from . import maps
    cfg = _config(spec)
    with tempfile.TemporaryDirectory(prefix="xaikit-maps-") as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(model_bytes)
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        ctx = Context(cfg, spec["listing"], Path(tmp), strategy_name=spec["strategy"], _prepared=prepared)
        out = [maps.as_arrays(maps.compute(ctx, model, *request)) for request in requests]
    keras.backend.clear_session()
    return out


def warm_task(threads: int) -> int:
    """Runs on a Ray worker of a cold build: start TensorFlow with ``threads`` threads and import
    what a training task imports, so that the worker is ready when the first model arrives."""
    _pin_threads(threads)
    from . import models  # noqa: F401  (Keras, xaikit's model, pipeline and training code)
    return os.getpid()


# ----------------------------------------------------------------------------- the driver


class LocalEngine:
    """Models train in this process when first needed (no Ray)."""

    name = "local"

    def submit(self, ctx: Context, names, progress: Stages | None = None) -> None:
        return None

    def warm(self, ctx: Context) -> None:
        return None

    def loader(self, fallback):
        return fallback

    def submit_maps(self, ctx: Context, name: str, requests: list):
        return None               # computed in this process when asked for (report.maps.get)

    def close(self, cancel: bool = False) -> None:
        return None


def stale(ctx: Context, name: str) -> bool:
    """Whether ``name`` must train: no card with this build's key, or no model file."""
    from . import architecture, models
    if name == "main" and architecture.model_file(ctx) is not None:
        return False              # a model trained elsewhere is evaluated here, not trained
    model_path, card_path = models.paths(ctx, name)
    card = artifacts.read_json(card_path)
    return not (isinstance(card, dict) and card.get("key") == models.key(ctx, name) and model_path.exists())


def with_upstream(ctx: Context, names) -> list[str]:
    """``names`` plus what they train from (random-i before control-i), each once, in order."""
    from . import models
    out: list[str] = []
    for n in names:
        up = models.upstream(n)
        if up is not None:
            if up not in out:
                out.append(up)
        if n not in out:
            out.append(n)
    return out


class RayEngine:
    """Stale models as Ray tasks, submitted together; a driver thread writes each result as it
    arrives (so an interrupted build keeps every finished model)."""

    name = "ray"

    def __init__(self, address: str | None, verbose: bool = False):
        self.address, self.verbose = address, verbose
        self.started = False
        self.refs: dict[str, tuple] = {}         # name -> (bytes ref, card ref)
        self.expected: dict[str, str] = {}       # name -> key computed here
        self.done: dict[str, threading.Event] = {}
        self.errors: dict[str, BaseException] = {}
        self.written: dict[str, dict] = {}       # name -> card as written
        self.progress: Stages | None = None
        self._ctx: Context | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warming: list = []                  # refs of warm_task (a cold build's first imports)
        self.joined = ""                         # the line saying where the models train, until said
        self.map_refs: list = []                 # refs of maps_task, cancelled with the trainings
        self._prepared_ref = None                # the decoded images in Ray's object store, put once

    def _connect(self, ctx: Context) -> None:
        import logging

        import ray
        if self.address:
            check_reachable(self.address)
        runtime_env = {"working_dir": str(ROOT), "excludes": EXCLUDES,
                       "env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}}
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")     # no telemetry from a build unless asked for
        t0 = time.perf_counter()
        kwargs = dict(runtime_env=runtime_env, log_to_driver=self.verbose,
                      logging_level=logging.INFO if self.verbose else logging.ERROR)
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(include_dashboard=False, num_cpus=os.cpu_count(), **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local instance"
            raise ClusterError(f"Ray at {where} could not be started or joined: "
                               f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__}") from None
        self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        alive = [n for n in ray.nodes() if n.get("Alive")]
        nodes = len(alive)
        largest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in alive), default=0)
        if ctx.cfg["run.threads"] > largest:       # such a task would wait for a node forever
            raise ClusterError(f"run.threads = {ctx.cfg['run.threads']} but the largest Ray node has {largest} "
                               f"CPUs; expected at most {largest}")
        what = f"cluster {self.address}" if self.address else "local Ray instance"
        self.joined = (f"{what}: {nodes} node(s), {cpus} CPUs, joined in {time.perf_counter() - t0:.1f} s; "
                       f"{max(1, cpus // ctx.cfg['run.threads'])} models train at once "
                       f"({ctx.cfg['run.threads']} thread(s) each)")
        ctx.timings.append(("ray start", "computed", time.perf_counter() - t0))

    def warm(self, ctx: Context) -> None:
        """On an embedded instance, start Ray now and have each worker slot import TensorFlow
        (:func:`warm_task`) while this process imports it too: a cold quick build waited about
        5 s for its workers' imports before the first model trained. A cluster is joined when
        the first model is submitted, as before."""
        if self.address or self.started:
            return
        import ray
        self._connect(ctx)
        threads = ctx.cfg["run.threads"]
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        remote = ray.remote(warm_task).options(name="xaikit-warm", num_cpus=threads, max_retries=0)
        self.warming = [remote.remote(threads) for _ in range(slots)]

    def submit(self, ctx: Context, names, progress: Stages | None = None) -> None:
        """Submit every stale model of ``names`` (and what it trains from) at once."""
        from . import models
        todo = [n for n in with_upstream(ctx, names) if stale(ctx, n)]
        if not todo:
            return
        import ray
        self._ctx = ctx
        if not self.started:
            self._connect(ctx)
        if self.joined:      # said once models are submitted (a build that stops before says nothing of Ray)
            log(self.joined)
            self.joined = ""
        if progress is not None:
            self.progress = progress
            progress.parallel(max(1, int(ray.cluster_resources().get("CPU", 1)) // ctx.cfg["run.threads"]),
                              [f"model {n}" for n in todo])
        prepared = self._prepared(ctx)
        base = self._spec(ctx)
        remote = ray.remote(train_task)
        for name in todo:
            if name in self.refs:
                continue
            upstream = {}
            up = models.upstream(name)
            if up is not None:
                upstream = {up: self.refs[up][1] if up in self.refs else artifacts.read_json(models.paths(ctx, up)[1])}
            self.expected[name] = models.key(ctx, name)
            self.done[name] = threading.Event()
            self.refs[name] = remote.options(
                name=f"xaikit-train-{name}", num_cpus=ctx.cfg["run.threads"], num_returns=2,
                max_retries=ctx.cfg["run.retries"], retry_exceptions=False).remote(
                dict(base, name=name, upstream=list(upstream)), prepared, *upstream.values())
        if self._thread is None:
            self._thread = threading.Thread(target=self._collect, name="xaikit-ray-collect", daemon=True)
            self._thread.start()

    @staticmethod
    def _spec(ctx: Context) -> dict:
        """What a task needs of the build besides the images: config, profile, listing, placement, threads."""
        return {"config": ctx.cfg.as_dict(), "profile": ctx.cfg.profile, "listing": ctx.listing,
                "strategy": ctx.strategy_name, "threads": ctx.cfg["run.threads"]}

    def _prepared(self, ctx: Context):
        import ray
        if self._prepared_ref is None:
            self._prepared_ref = ray.put(ctx.prepared())
        return self._prepared_ref

    def submit_maps(self, ctx: Context, name: str, requests: list):
        """One Ray task computing ``requests`` (report.maps.compute's arguments) of model ``name``, or None
        when the model is neither trained in this build nor stored with this build's key. The model is the
        bytes its training task returns when it trains in this build (Ray starts the job once it has
        finished), else its file in build/models. Whether a set is made by a job does not depend on timing:
        every set a section hands over is (a job's threads are pinned, as a training's, so its maps are the
        same on any node; this process's threads are TensorFlow's own, which changes float rounding)."""
        if name not in self.refs and stale(ctx, name):
            return None
        from . import architecture, models
        if name == "main" and architecture.model_file(ctx) is not None:
            return None           # a model trained elsewhere: explained here, where it was loaded
        model_path = models.paths(ctx, name)[0]
        import ray
        if not self.started:
            self._connect(ctx)
        if self.joined:
            log(self.joined.replace("models train", "map jobs run"))
            self.joined = ""
        data = self.refs[name][0] if name in self.refs else ray.put(model_path.read_bytes())
        ref = ray.remote(maps_task).options(
            name=f"xaikit-maps-{name}", num_cpus=ctx.cfg["run.threads"], max_retries=ctx.cfg["run.retries"],
            retry_exceptions=False).remote(self._spec(ctx), self._prepared(ctx), data, list(requests))
        self.map_refs.append(ref)
        return ref

    def result(self, ref) -> list[dict]:
        """What a map job returned (waits for it); its failure is raised as a one-line ClusterError."""
        import ray
        try:
            return ray.get(ref)
        except Exception as exc:   # noqa: BLE001  (Ray's task errors carry the worker's traceback)
            raise ClusterError(_one_line(exc)) from None

    def _collect(self) -> None:
        """Write each finished model to build/models (atomically, after its key is checked)."""
        import ray
        while not self._stop.is_set():
            pending = {refs[1]: name for name, refs in self.refs.items() if not self.done[name].is_set()}
            if not pending:
                self._stop.wait(0.2)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                name = pending[ref]
                try:
                    data, card = ray.get(list(self.refs[name]))
                    self._write(name, data, card)
                except BaseException as exc:    # noqa: BLE001  (handed to the waiting build thread)
                    self.errors[name] = exc
                finally:
                    self.done[name].set()

    def _write(self, name: str, data: bytes, card: dict) -> None:
        from . import models
        if card.get("key") != self.expected[name]:
            raise ClusterError(f"model {name}: the worker computed key {card.get('key')} but this build expects "
                               f"{self.expected[name]} (a source file changed while the build ran, or the "
                               f"workers run other code); rerun the build")
        model_path, card_path = models.paths(self._ctx, name)
        artifacts.atomic_write_bytes(model_path, data)
        artifacts.atomic_write_json(card_path, card)
        self.written[name] = card
        seconds = float(card.get("task_seconds", card.get("seconds", 0.0)))
        self._ctx.timings.append((f"model {name}", "computed", seconds))
        node = card.get("node", {})
        line = (f"model {name}: trained in {card['seconds']:.0f} s, {card['epochs_run']} epochs ({card['stopped']}) "
                f"on {node.get('host')} with {card.get('threads')} thread(s); saved {model_path}")
        if self.progress is not None:
            self.progress.finish(f"model {name}", seconds, line)
        else:
            log(line)

    def wait(self, name: str) -> None:
        """Block until ``name`` (if submitted) is written; raise its failure as one line."""
        event = self.done.get(name)
        if event is None:
            return
        while not event.wait(0.5):       # a timed wait keeps Ctrl-C responsive
            pass
        exc = self.errors.get(name)
        if exc is not None:
            if isinstance(exc, XaikitError):
                raise exc
            raise ClusterError(f"model {name}: training failed on Ray: {_one_line(exc)}")

    def loader(self, fallback):
        """A ``Context.model_loader``: wait for a submitted model, then load it from build/models."""
        def load(ctx: Context, name: str):
            self.wait(name)
            if name in self.written:
                from . import models
                cached = models.load_cached(ctx, name)
                if cached is not None:
                    return cached
            return fallback(ctx, name)
        return load

    def close(self, cancel: bool = False) -> None:
        """Stop collecting; with ``cancel`` (Ctrl-C, an error) cancel the unfinished tasks.
        An embedded instance is shut down; a cluster is left running."""
        self._stop.set()
        if not self.started:
            return
        import ray
        if cancel:
            for ref in self.warming + self.map_refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:   # noqa: BLE001  (already finished or gone)
                    pass
            for name, refs in self.refs.items():
                if not self.done[name].is_set():
                    for ref in refs:
                        try:
                            ray.cancel(ref, force=True)
                        except Exception:   # noqa: BLE001  (already finished or gone)
                            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        ray.shutdown()
        self.started = False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    tail = [t for t in text if t.strip()][-1:] or [type(exc).__name__]
    return tail[0][:300]


def make(ctx: Context, cluster: str | None = None, verbose: bool = False):
    """The engine of this build: Ray (embedded or ``cluster``) unless ``[run] engine = "local"``."""
    address = cluster_address(cluster)
    if ctx.cfg["run.engine"] == "local" and not address:
        return LocalEngine()
    return RayEngine(address, verbose)


@contextmanager
def running(ctx: Context, fallback, cluster: str | None = None, verbose: bool = False):
    """The engine for one build: installs its model loader on ``ctx``; on an exception (Ctrl-C
    included) the unfinished tasks are cancelled, and Ray is stopped at the end."""
    eng = make(ctx, cluster, verbose)
    ctx.model_loader = eng.loader(fallback)
    vars(ctx)["_engine"] = eng       # report.maps hands map jobs to it (not a Context field: see maps.ig_boundary)
    try:
        yield eng
    except BaseException:
        eng.close(cancel=True)
        raise
    finally:
        vars(ctx).pop("_engine", None)
        vars(ctx).pop("_map_pending", None)     # refs of a stopped Ray instance: made here if asked for again
    eng.close()

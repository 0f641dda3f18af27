"""The map store: where every attribution map of the report is computed and kept (issue #30, item 1).

Q2.3, Q3, Q4, Q5 and the seeds ask :func:`get` for their maps instead of importing each other:
``get(ctx, "main", "ig", "blurred", x, target)`` gives a frozen :class:`MapSet` (maps, targets,
completeness gap, F(x), F(b), steps). Each map set is kept under its own content key (the model's
key, method, setting, the images and targets, the ``attribution.`` settings and this module's code,
with what it imports) in ``build/cache/maps/``, and in memory for the build: a section that needs
the maps another section made finds them there, whichever ran first, so no stage waits for another.
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaikit import baselines as xb
from xaikit.gradcam import GradcamExplainer
from xaikit.ig import PathGradients, integrated_gradients_adaptive, integrated_gradients_expected
from xaikit.model import gradcam_layers, logits_model
from xaikit.pipeline import to_float
from xaikit.scores import margin_model

from . import artifacts, sources
from .context import Context, log
from .progress import bar

METHODS = ("ig", "gradcam")


@dataclass(frozen=True)
class MapSet:
    """One map set of one model: ``maps`` N x H x W x C for IG (signed), N x H x W for Grad-CAM
    (upsampled to the input); IG's completeness gap, F(x), F(b) and steps (None for Grad-CAM)."""

    method: str
    setting: str            # IG's baseline, or Grad-CAM's layer
    maps: np.ndarray
    targets: np.ndarray
    gap: np.ndarray | None = None
    f_image: np.ndarray | None = None
    f_baseline: np.ndarray | None = None
    steps: int | None = None

    @property
    def attributions(self) -> np.ndarray:   # xaikit.ig's name for the maps
        return self.maps


def _arrays_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def map_key(ctx: Context, name: str, method: str, setting: str, x: np.ndarray, target: np.ndarray,
            adaptive: bool) -> str:
    """The content key of one map set: what made the model, what is explained and how, this code."""
    from . import models
    return artifacts.digest("maps", models.key(ctx, name), ctx.data_key, method, setting, bool(adaptive),
                            _arrays_digest(x, target), ctx.cfg.digest(("attribution.",)), _code_digest())


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The store's code (this module and every project module it imports, as this process read them at start):
    parsed and hashed once per process, not once per map set."""
    return artifacts.source_digest(list(sources.of(__file__)))


def get(ctx: Context, name: str | None, method: str, setting: str, x: np.ndarray, target: np.ndarray, *,
        model=None, adaptive: bool = True, b: np.ndarray | None = None) -> MapSet:
    """The ``method`` maps ("ig" with baseline ``setting``, "gradcam" at layer ``setting``) of model
    ``name`` for images ``x`` and explained classes ``target``: from the store when its key is there,
    else computed and kept. ``name`` None (with ``model``): a model outside the build's zoo (the
    cascade's randomized copies), computed and not kept; ``b`` its baseline images when the caller
    already made them. ``adaptive`` False: IG at the fixed step count."""
    if method not in METHODS:
        raise ValueError(f"maps.get expects a method in {METHODS}, got {method!r}")
    target = np.asarray(target)
    if name is None:
        return compute(ctx, model, method, setting, x, target, adaptive, b)
    key = map_key(ctx, name, method, setting, x, target, adaptive)
    held = vars(ctx).setdefault("_map_sets", {})
    if key not in held:
        path = _path(ctx, key)
        stored = _load(path, method, setting)
        held[key] = stored or _from_job(ctx, key, name, method, setting)
        if held[key] is None:
            model = ctx.model(name)[0] if model is None else model
            held[key] = compute(ctx, model, method, setting, x, target, adaptive)
        if stored is None:
            artifacts.atomic_save_npz(path, **as_arrays(held[key]))
    return held[key]


def _path(ctx: Context, key: str) -> Path:
    return ctx.build / "cache" / "maps" / f"{key}.npz"


def prefetch(ctx: Context, name: str, method: str, setting: str, x: np.ndarray, target: np.ndarray, *,
             adaptive: bool = True) -> bool:
    """Start the map set that :func:`get` will be asked for as a map job of the build's engine
    (report.engine: a Ray task, beside this process), when it is neither held nor stored and the
    engine takes it; :func:`get` then waits for it instead of computing it. Whether a job was started.
    A job that fails is computed here when asked for, with a line."""
    engine = vars(ctx).get("_engine")
    if engine is None:
        return False
    target = np.asarray(target)
    key = map_key(ctx, name, method, setting, x, target, adaptive)
    pending = vars(ctx).setdefault("_map_pending", {})
    if (key in pending or key in vars(ctx).get("_map_sets", {})
            or _path(ctx, key).exists()):
        return False
    ref = engine.submit_maps(ctx, name, [(method, setting, x, target, adaptive)])
    if ref is not None:
        pending[key] = (engine, ref)
    return ref is not None


def _from_job(ctx: Context, key: str, name: str, method: str, setting: str) -> MapSet | None:
    """The map set of a map job started by :func:`prefetch` (waiting for it), or None."""
    job = vars(ctx).get("_map_pending", {}).pop(key, None)
    if job is None:
        return None
    engine, ref = job
    try:
        (arrays,) = engine.result(ref)
    except Exception as exc:   # noqa: BLE001  (a failed job, said in one line by its engine: the set is made here)
        log(f"map job {'IG' if method == 'ig' else 'Grad-CAM'} ({setting}) of model {name} failed on Ray "
            f"({exc}); computing it here")
        return None
    return from_arrays(method, setting, arrays)


def as_arrays(ms: MapSet) -> dict:
    """A map set as plain arrays (what a map job returns and the store keeps); steps -1 for none."""
    return {**{k: v for k, v in vars(ms).items() if isinstance(v, np.ndarray)},
            "steps": np.array(-1 if ms.steps is None else ms.steps)}


def from_arrays(method: str, setting: str, z) -> MapSet:
    steps = int(z["steps"])
    return MapSet(method, setting, z["maps"], z["targets"],
                  *(z[k] if k in z else None for k in ("gap", "f_image", "f_baseline")),
                  steps=None if steps < 0 else steps)


def _load(path: Path, method: str, setting: str) -> MapSet | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return from_arrays(method, setting, {k: z[k] for k in z.files})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        log(f"map cache {path.name} unreadable; computing again")
        return None


def compute(ctx: Context, model, method: str, setting: str, x, target, adaptive: bool, b=None) -> MapSet:
    if method == "gradcam":
        return MapSet(method, setting, np.asarray(explainer(ctx, model, setting)(x, target)), target)
    r = explain_ig(ctx, model, x, target, setting, adaptive=adaptive, b=b)
    return MapSet(method, setting, r.attributions, target, r.gap, r.f_image, r.f_baseline, r.steps)


def explainer(ctx: Context, model, layer: str) -> GradcamExplainer:
    """``model``'s Grad-CAM explainer at ``layer``, made once per model and layer for the build (held on
    the Context with the model, as :func:`ig_boundary`): ``explainer(...)(x, target)`` gives the maps
    upsampled to the input, ``.grid(x, target)`` the maps at the layer's own grid."""
    held = vars(ctx).setdefault("_gradcam_explainers", {})
    if (id(model), layer) not in held:
        held[id(model), layer] = (model, GradcamExplainer(model, layer))
    return held[id(model), layer][1]


def prune(ctx: Context) -> int:
    """Delete the stored map sets this build did not ask for (after a whole build); their number."""
    held = vars(ctx).get("_map_sets", {})
    gone = 0
    for p in (ctx.build / "cache" / "maps").glob("*.npz"):
        if p.stem not in held:
            p.unlink(missing_ok=True)
            gone += 1
    return gone

def baseline_images(name: str, x: np.ndarray, ctx: Context) -> np.ndarray:
    """Baseline array for images ``x``: N x H x W x C, or k x N x ... for noise."""
    a = ctx.cfg.section("attribution")
    if name == "black":
        return xb.black(x)
    if name == "white":
        return xb.white(x)
    if name == "blurred":
        return xb.blurred(x, a["blur_sigma"] * x.shape[1] / 128)
    if name == "noise":
        return xb.uniform_noise(x, a["noise_draws"], a["seed"])
    if name == "train_mean":
        return xb.train_mean(x, to_float(ctx.prepared().x("train")).mean(0))
    raise ValueError(f"baseline expects one of {xb.BASELINES}, got {name!r}")


def ig_boundary(ctx: Context, model) -> PathGradients:
    """``model``'s explained score (:func:`explained_model`) with its IG graph, traced once per
    model for the whole build: every later IG of that model reuses the trace (a trace costs
    several times an IG of a few images at the quick profile's size). Kept on the build's
    Context, as long as it lives (not declared in report/context.py, whose source is in every
    model's cache key); the model is held with it, so its id is not reused."""
    held = vars(ctx).setdefault("_ig_boundaries", {})
    if id(model) not in held:
        held[id(model)] = (model, PathGradients(explained_model(model)))
    return held[id(model)][1]


def explain_ig(ctx: Context, model, x: np.ndarray, target: np.ndarray, baseline: str, *,
               adaptive: bool, b: np.ndarray | None = None):
    """IG of the trained ``model``'s explained score (the logit margin of ``target``) with the
    named baseline (steps doubled where the completeness gap exceeds the tolerance, unless
    ``adaptive`` is False). ``b``: the baseline images when the caller already made them."""
    a = ctx.cfg.section("attribution")
    model = ig_boundary(ctx, model)
    b = baseline_images(baseline, x, ctx) if b is None else b
    draws = len(b) if baseline == "noise" else 1
    with bar(f"IG {baseline}", draws * len(x) * (a["ig_steps"] + 1), "pts") as update:
        if baseline == "noise":
            return integrated_gradients_expected(model, x, b, target, steps=a["ig_steps"],
                                                 batch_size=a["ig_batch_size"], progress=update)
        return integrated_gradients_adaptive(
            model, x, b, target, steps=a["ig_steps"], tolerance=a["ig_tolerance"],
            max_steps=a["ig_max_steps"] if adaptive else a["ig_steps"],
            batch_size=a["ig_batch_size"], progress=update)


def explained_model(model):
    """The score every map of this report explains: the logit margin z_target - z_other."""
    return margin_model(logits_model(model))


def cam_layers(ctx: Context, model):
    """The Grad-CAM layer and the earlier, finer one that the config names, on ``model`` (read from
    the model in use: "auto" resolves per model)."""
    a = ctx.cfg.section("attribution")
    return gradcam_layers(model, a["gradcam_layer"], a["gradcam_early_layer"])

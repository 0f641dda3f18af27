"""Where every attribution map of the report is computed (issue #30, item 1; a first step).

Q2.3, Q3, Q4, Q5 and the seeds ask this module for their maps instead of importing each other:
the explained score (the logit margin), IG with a named baseline, Grad-CAM at the layers the
config names on the model in use. Caching each map set under its own content key is the next
step; today each section still recomputes the maps it needs (its key covers this file).
"""

from __future__ import annotations

import numpy as np

from xaikit import baselines as xb
from xaikit.gradcam import GradcamExplainer
from xaikit.ig import PathGradients, integrated_gradients_adaptive, integrated_gradients_expected
from xaikit.model import gradcam_layers, logits_model
from xaikit.pipeline import to_float
from xaikit.scores import margin_model

from .context import Context
from .progress import bar

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


def explain_ig(ctx: Context, model, x: np.ndarray, target: np.ndarray, baseline: str,
               adaptive: bool = True, b: np.ndarray | None = None):
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


def gradcam(model, layer: str) -> GradcamExplainer:
    """The one Grad-CAM explainer of the report: ``gradcam(model, layer)(x, target)`` gives the
    maps upsampled to the input, ``.grid(x, target)`` the maps at the layer's own grid."""
    return GradcamExplainer(model, layer)

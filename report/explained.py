"""The main model's explained sample: Q3's images, their decisions, IG maps, lung masks and nulls.

Q3, Q4 and Q5 read the same explained images; each asks :func:`main` (held for the build) instead of
reading another section's saved arrays, so no section waits for another. The maps come from the map
store (report/maps.py); :func:`seed_ig` gives a seed's IG of the seed images the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from xaikit import similarity
from xaikit.pipeline import to_float
from xaikit.train import predict_probs

from . import maps, measures, samples
from .context import Context, log


class Explained(NamedTuple):
    """The main model's IG of Q3's sample, with what every section that reads it needs."""

    x: np.ndarray
    y: np.ndarray
    names: np.ndarray
    probs: np.ndarray
    threshold: float
    target: np.ndarray
    ig: maps.MapSet             # attributions, gap, f_image, f_baseline, steps
    masks: np.ndarray
    fallback: np.ndarray
    nulls: dict                 # "input": |x - baseline|, "random": a random map per image


def main(ctx: Context) -> Explained:
    """IG of the main model's decisions (at its validation threshold) on Q3's sample, made once per build."""
    held = vars(ctx)
    if "_explained_main" not in held:
        held["_explained_main"] = _explain(ctx)
    return held["_explained_main"]


def _explain(ctx: Context) -> Explained:
    model, card = ctx.model("main")
    p, a, s = ctx.prepared(), ctx.cfg.section("attribution"), samples.choose(ctx)
    x = to_float(p.images[s.eval_idx])
    y = p.labels[s.eval_idx]
    probs = predict_probs(model, x)
    thr = float(card["val_threshold"])
    target = (probs >= thr).astype(int)       # explain the decision at the operating threshold
    log(f"IG ({a['ig_baseline']} baseline) for {len(x)} test images")
    ig = maps.get(ctx, "main", "ig", a["ig_baseline"], x, target)
    masks, fallback = measures.lung_masks(x)
    b = maps.baseline_images(a["ig_baseline"], x, ctx)
    input_alone = np.abs(similarity.to_2d(x - (b.mean(0) if b.ndim == 5 else b)))
    rand = measures.random_maps(input_alone.shape, 0, a["seed"])
    return Explained(x, y, p.names[s.eval_idx], probs, thr, target, ig, masks, fallback,
                     {"input": input_alone, "random": rand})


def seed_ig(ctx: Context, name: str, model, card: dict, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IG with the main baseline, explained classes) of seed ``name`` on images ``xs``, each image
    explained at the seed's own decision."""
    target = seed_target(model, card, xs)
    return maps.get(ctx, name, "ig", ctx.cfg["attribution.ig_baseline"], xs, target).maps, target


def seed_target(model, card: dict, xs: np.ndarray) -> np.ndarray:
    """A seed's decisions on images ``xs`` at its own validation threshold: the classes its maps explain."""
    return (predict_probs(model, xs) >= float(card["val_threshold"])).astype(int)

"""What a model that learned nothing shows: the reference that decides Q3.2 and Q4.2 (issue #32, item 3).

The random-label models of Q5 (``random-1`` .. ``random-k``, each trained on permuted labels of its
seeded subset) are explained on the same images and targets as the main model, through the map store
(report/maps.py); per image, the mean over them of their unit-mass |maps| is where a model of this
recipe puts its attribution when it learned nothing about the label. A lung ratio above that
reference is the model's own, not the architecture's or the films'. Q3.3 and Q4.3 compare the class specificity
of the main maps with each counted model's own maps of the same images and targets (:func:`own_maps`,
:func:`report.measures.learned_specificity`): a verdict those models reach as strongly is the method's.

Which random-label models count is Q5.1's rule (:func:`as_intended`), decided on validation before
any map is compared; it lives here so that Q3, Q4 and Q5 read one rule without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from xaikit import similarity

from . import maps, measures, models, seeds
from .context import Context, log

CHANCE_AUC = 0.5                 # the AUC of a score that does not depend on the label (not a tuned cut-off)


def random_auc_band(cfg) -> tuple[float, float]:
    """(low, high) of the test AUC a random-label model should reach: chance +- ``verdicts.random_auc_band``."""
    half = cfg["verdicts.random_auc_band"]
    return CHANCE_AUC - half, CHANCE_AUC + half


def as_intended(kind: str, train_accuracy: float, val_auc: float, cfg) -> bool:
    """Q5.1: a random-label model memorised its permuted labels (``random_labels.target_accuracy``) and
    scores at chance on the true labels of the *validation* split (:func:`random_auc_band`): decided
    before any map is compared, without the test labels; a control fits its true labels
    (``verdicts.control_fit``)."""
    if kind == "random":
        low, high = random_auc_band(cfg)
        return bool(train_accuracy >= cfg["random_labels.target_accuracy"] and low <= val_auc <= high)
    return bool(train_accuracy >= cfg["verdicts.control_fit"])


def validation_auc(ctx: Context, name: str) -> float:
    """A model's AUC on the true labels of the validation split (computed once per build and model)."""
    held = vars(ctx).setdefault("_validation_auc", {})
    if name not in held:
        from sklearn.metrics import roc_auc_score
        from xaikit.train import predict_probs
        p = ctx.prepared()
        y = p.y("val")
        # one class only: no AUC (the rule then counts no random-label model)
        held[name] = (float("nan") if len(np.unique(y)) < 2 else
                      float(roc_auc_score(y, predict_probs(ctx.model(name)[0], p.x("val")))))
    return held[name]


def counted(ctx: Context) -> tuple[str, ...]:
    """The seeded-subset random-label models as intended on validation (Q5.1's rule), in order."""
    return tuple(m for m in models.subset_arm(ctx, "random")
                 if as_intended("random", ctx.model(m)[1]["train_accuracy"], validation_auc(ctx, m), ctx.cfg))


class Reference(NamedTuple):
    """The learned-nothing reference of one method on the main model's explained images."""

    method: str                      # "ig" or "gradcam"
    models: tuple[str, ...]          # the counted random-label models it averages
    not_counted: tuple[str, ...]     # the seeded-subset random-label models left out by Q5.1's rule
    maps: np.ndarray | None          # N x H x W, per image the mean unit-mass |map|; None when no model counts
    target: np.ndarray               # the explained classes (the main model's decisions)
    x: np.ndarray                    # the explained images


def setting(ctx: Context, method: str, model) -> str:
    """The map setting of a random-label model: IG's main baseline, or Grad-CAM's layer resolved on that model."""
    if method == "ig":
        return ctx.cfg["attribution.ig_baseline"]
    layer = maps.cam_layers(ctx, model).layer
    if layer is None:
        raise ValueError(f"Grad-CAM expects a convolutional layer in every random-label model, got none: "
                         f"{maps.cam_layers(ctx, model).reason}")
    return layer


def mean_map(ctx: Context, method: str, names, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per image, the mean over the models ``names`` of their unit-mass |maps| of ``x`` explained at ``target``
    (IG: the main baseline, steps as adaptive as the main model's; Grad-CAM: each model's own layer)."""
    per = []
    for name in names:
        model = ctx.model(name)[0]
        per.append(measures.unit_mass(maps.get(ctx, name, method, setting(ctx, method, model), x, target).maps))
    return np.mean(per, axis=0)


def prefetch(ctx: Context, method: str, x: np.ndarray, target: np.ndarray) -> None:
    """Start the maps :func:`reference` will average as map jobs (report.maps.prefetch): every random-label model
    of the seeded subsets (which of them count is known only once each is loaded; a job of one left out is unused).
    IG only: Grad-CAM's layer is resolved on the loaded model, and its maps cost little."""
    if method == "ig":
        for name in models.subset_arm(ctx, "random"):
            maps.prefetch(ctx, name, "ig", ctx.cfg["attribution.ig_baseline"], x, target)


def own_maps(ctx: Context, ref: Reference, cells: int, pos: np.ndarray | None = None,
             target=None) -> dict[str, np.ndarray]:
    """Each counted model's own |maps| of the explained images at positions ``pos`` (default: all of them),
    explained at ``target`` (default: the reference's targets, the main model's decisions; a seed's own decisions
    in Q3.5 / Q4.5), average-pooled to ``cells`` x ``cells`` (the resolution of Q3.3 / Q4.3): name -> N x cells x
    cells. The same map sets as :func:`mean_map` (the store keeps them), compared model by model, not averaged (Q3.3 /
    Q4.3); as :func:`on_subset`, only the rows where ``target`` differs from the reference's are made again (a
    map depends on its own image and target alone), so a seed's images cost the maps of its differing decisions."""
    pos = np.arange(len(ref.target)) if pos is None else np.asarray(pos)
    target = ref.target[pos] if target is None else np.asarray(target)
    other = target != ref.target[pos]
    out = {}
    for name in ref.models:
        model = ctx.model(name)[0]
        where = setting(ctx, ref.method, model)
        m = np.abs(similarity.to_2d(maps.get(ctx, name, ref.method, where, ref.x, ref.target).maps))[pos]
        if other.any():
            m[other] = np.abs(similarity.to_2d(maps.get(ctx, name, ref.method, where, ref.x[pos][other],
                                                        target[other]).maps))
        out[name] = similarity.pool(m, cells)
    return out


def reference(ctx: Context, method: str, x: np.ndarray, target: np.ndarray) -> Reference:
    """The learned-nothing reference of ``method`` for images ``x`` explained at ``target``."""
    names = counted(ctx)
    left = tuple(m for m in models.subset_arm(ctx, "random") if m not in names)
    if not names:
        return Reference(method, names, left, None, np.asarray(target), x)
    log(f"{'IG' if method == 'ig' else 'Grad-CAM'} of the {len(names)} counted random-label models for {len(x)} "
        "test images (the learned-nothing reference)")
    return Reference(method, names, left, mean_map(ctx, method, names, x, target), np.asarray(target), x)


def on_subset(ctx: Context, ref: Reference, pos: np.ndarray, x: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The reference for the images ``x`` at positions ``pos`` of the explained sample, explained at ``target``
    (a seed's own decisions): the sample's rows where the target is the main model's, the others made the
    same way. None when no model counts."""
    if ref.maps is None:
        return None
    out = ref.maps[pos].copy()
    other = np.asarray(target) != ref.target[pos]
    if other.any():
        out[other] = mean_map(ctx, ref.method, ref.models, x[other], np.asarray(target)[other])
    return out


def with_reference(nulls: dict, learned: np.ndarray | None) -> dict:
    """The null references of :func:`report.measures.region_numbers`, with ``learned`` when there is one."""
    return nulls if learned is None else {**nulls, "learned": learned}


def numbers(ref: Reference) -> dict:
    """What Q3.2 / Q4.2 say about the reference: the models it averages, the ones left out, and the phrases."""
    k, left = len(ref.models), len(ref.not_counted)
    total = k + left
    return {"models": list(ref.models), "n": k, "any": k > 0, "not_counted": list(ref.not_counted),
            "some_not_counted": left > 0, "models_text": seeds.names_text(ref.models),
            "not_counted_text": seeds.names_text(ref.not_counted),
            "phrase": ("" if not k else "the one random-label model counted in Q5.1" if k == 1 else
                       f"the {k} random-label models counted in Q5.1") + (f", {seeds.names_text(ref.models)}" if k else ""),
            "reason": ("" if k else f"Q5.1 counts none of the {total} random-label models of the seeded subsets: none "
                       "is as intended on validation"),
            "rule": "per image, the mean over the counted random-label models of their |map| scaled to unit mass, "
                    "on the main model's explained images and targets"}

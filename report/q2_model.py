"""Q2: the CNN classifier, its training and its test-set performance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from xaikit import intervals, plots
from xaikit.model import architecture_table
from xaikit.robustness import blur_sensitivity
from xaikit.train import predict_probs


from . import models, q2_errors
from .context import Context, lib
from .section import Result, Section, Sub

KERMANY = {"model": "Kermany et al. 2018 (transfer learning, Inception v3)", "accuracy": 0.928,
           "sensitivity": 0.932, "specificity": 0.901, "auc": 0.968}
CI_METRICS = ("accuracy", "sensitivity", "specificity", "auc")


def versus(ours: dict, theirs: float) -> str:
    """Where a published point value lies against our 95% interval."""
    return "below" if theirs < ours["lo"] else "above" if theirs > ours["hi"] else "within"


SEED_METRICS = CI_METRICS + ("precision", "f1")


def _replicates(ctx: Context, card: dict) -> dict:
    """Test metrics (each at its own validation threshold) over the seeds of the main recipe:
    main and main-2..r; mean, min and max per metric."""
    cards = [card] + [ctx.model(m)[1] for m in models.expand(ctx, "replicates")]
    per = [c["test"]["at_val_threshold"] for c in cards]
    out = {"n": len(cards), "seeds": [int(c.get("seed", ctx.cfg["train.seed"])) for c in cards],
           "val_auc": [float(c["val"]["auc"]) for c in cards]}
    for m in SEED_METRICS:
        v = np.array([float(d[m]) for d in per])
        out[m] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
                  "values": v.tolist()}
    return out


def run(ctx: Context) -> Result:
    model, card = ctx.model("main")
    p = ctx.prepared()
    res = Result()
    n = res.numbers
    arch = architecture_table(model)
    res.table("q2_arch", pd.DataFrame(arch), "Architecture of the classifier (Keras functional model).")
    t = ctx.cfg.section("train")
    n["params"] = int(model.count_params())
    n["train"] = {**t, "epochs_run": card["epochs_run"], "best_epoch": card["best_epoch"],
                  "seconds": card["seconds"], "minutes": card["seconds"] / 60,
                  "n_train": card["n_train"], "n_val": card["n_val"], "n_test": card["n_test"]}
    n["val_threshold"] = card["val_threshold"]
    n["val"] = card["val"]
    test05, testv = card["test"]["at_0.5"], card["test"]["at_val_threshold"]
    n["test"] = {"at_05": test05, "at_val": testv}
    n["kermany"] = KERMANY
    p_test = predict_probs(model, p.x("test"))
    ci = {tag: {k: v.as_dict() for k, v in intervals.classification_intervals(
              p.y("test"), p_test, thr, seed=ctx.cfg["data.seed"]).items()}
          for tag, thr in (("at_val", card["val_threshold"]), ("at_05", 0.5))}
    n["test_ci"] = ci
    # Kermany et al. report point values; ours carry intervals: where does theirs lie?
    n["vs_kermany"] = {m: versus(ci["at_val"][m], KERMANY[m]) for m in CI_METRICS}
    n["beats_kermany"] = all(v == "below" for v in n["vs_kermany"].values())
    n["meets_target"] = bool(testv["auc"] >= 0.95 and testv["accuracy"] >= 0.90 and
                             testv["sensitivity"] >= 0.85 and testv["specificity"] >= 0.85)
    n["dominant_error"] = ("false positives (NORMAL images called PNEUMONIA)" if testv["fp"] > testv["fn"]
                           else "false negatives (PNEUMONIA images called NORMAL)")
    n["fp"], n["fn"] = testv["fp"], testv["fn"]

    def cell(tag, m):
        e = ci[tag][m]
        return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"

    rows = [
        {"model": f"this CNN, validation threshold {card['val_threshold']:.3f}",
         **{m: cell("at_val", m) for m in CI_METRICS}, "precision": testv["precision"], "F1": testv["f1"]},
        {"model": "this CNN, threshold 0.5", **{m: cell("at_05", m) for m in CI_METRICS},
         "precision": test05["precision"], "F1": test05["f1"]},
        {"model": KERMANY["model"], **{m: KERMANY[m] for m in CI_METRICS}, "precision": np.nan, "F1": np.nan},
    ]
    seeds = _replicates(ctx, card)
    n["replicates"] = seeds
    if seeds["n"] > 1:
        rows.insert(2, {"model": f"this recipe, {seeds['n']} seeds (mean [min, max]), validation thresholds",
                        **{m: f"{seeds[m]['mean']:.3f} [{seeds[m]['min']:.3f}, {seeds[m]['max']:.3f}]"
                           for m in CI_METRICS},
                        "precision": seeds["precision"]["mean"], "F1": seeds["f1"]["mean"]})
    res.table("q2_metrics", pd.DataFrame(rows).fillna("-"),
              f"Test-set performance ({card['n_test']} images) with 95% intervals (Wilson for accuracy, "
              "sensitivity and specificity; AUC: 2,000 bootstrap resamples of the test images within each "
              "class). Sensitivity = recall of PNEUMONIA, specificity = recall of NORMAL. Kermany et al. "
              "report point values only.")
    res.figure("q2_curves", plots.training_curves(card["history"]),
               "Training curves: loss and AUC per epoch on the (augmented) training and the validation split.")
    labels = ("NORMAL", "PNEUMONIA")
    cm_v = np.array([[testv["tn"], testv["fp"]], [testv["fn"], testv["tp"]]])
    cm_5 = np.array([[test05["tn"], test05["fp"]], [test05["fn"], test05["tp"]]])
    res.figure("q2_cm", plots.confusion({
        f"threshold {card['val_threshold']:.3f} (validation)": cm_v, "threshold 0.5": cm_5}, labels),
        "Test-set confusion matrices.")
    p_val = predict_probs(model, p.x("val"))
    curves = {}
    for name, y, s in (("test", p.y("test"), p_test), ("validation", p.y("val"), p_val)):
        fpr, tpr, _ = roc_curve(y, s)
        curves[name] = (fpr, tpr, float(np.trapezoid(tpr, fpr)))
    res.figure("q2_roc", plots.roc(curves, {
        "test at validation threshold": (1 - testv["specificity"], testv["sensitivity"])}),
        "ROC curves on the test and validation splits; the dot marks the operating point.")
    sigma = 2.0 * ctx.cfg["data.image_size"] / 128
    yv = p.y("val")
    n["blur"] = {"sigma": sigma,
                 **{c: blur_sensitivity(model, p.x("val")[yv == k], sigma).__dict__
                    for k, c in enumerate(labels)}}
    q2_errors.run(ctx, model, card, res)
    return res


SECTION = Section(
    name="q2", title="Q2 A CNN classifier", run=run,
    sources=tuple(lib("plots", "model", "robustness", "intervals") + [Path(__file__)] + q2_errors.SOURCES),
    config=("train.", "augment.", "data.", "attribution.", "verdicts.alpha", "verdicts.border_frac"),
    models=("main", "replicates"),
    subs=(
        Sub("Q2.1", "Architecture and training", "q2_1.md", tables=("q2_arch",), figures=("q2_curves",)),
        Sub("Q2.2", "Test-set performance", "q2_2.md", tables=("q2_metrics",), figures=("q2_cm", "q2_roc")),
        Sub("Q2.3", "Where the classifier errs, and what it looks at", "q2_3.md",
            figures=("q2_errors",), tables=("q2_errors_maps", "q2_errors_common")),
    ))

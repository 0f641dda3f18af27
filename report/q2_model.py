"""Q2: the CNN classifier, its training and its test-set performance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from xaikit import plots
from xaikit.model import architecture_table
from xaikit.robustness import blur_sensitivity
from xaikit.train import predict_probs


from .context import Context, lib
from .section import Result, Section, Sub

KERMANY = {"model": "Kermany et al. 2018 (transfer learning, Inception v3)", "accuracy": 0.928,
           "sensitivity": 0.932, "specificity": 0.901, "auc": 0.968}
PUBLIC_SCRATCH = (0.81, 0.91)   # accuracy range of public from-scratch CNNs on this test set


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
    n["public_scratch"] = {"low": PUBLIC_SCRATCH[0], "high": PUBLIC_SCRATCH[1]}
    n["beats_kermany"] = bool(testv["accuracy"] > KERMANY["accuracy"] and testv["auc"] > KERMANY["auc"])
    n["meets_target"] = bool(testv["auc"] >= 0.95 and testv["accuracy"] >= 0.90 and
                             testv["sensitivity"] >= 0.85 and testv["specificity"] >= 0.85)
    n["dominant_error"] = ("false positives (NORMAL images called PNEUMONIA)" if testv["fp"] > testv["fn"]
                           else "false negatives (PNEUMONIA images called NORMAL)")
    n["fp"], n["fn"] = testv["fp"], testv["fn"]
    rows = [
        {"model": f"this CNN, validation threshold {card['val_threshold']:.3f}", **_cols(testv)},
        {"model": "this CNN, threshold 0.5", **_cols(test05)},
        {"model": KERMANY["model"], "accuracy": KERMANY["accuracy"], "sensitivity": KERMANY["sensitivity"],
         "specificity": KERMANY["specificity"], "precision": np.nan, "F1": np.nan, "AUC": KERMANY["auc"]},
        {"model": "public from-scratch CNNs (accuracy range)",
         "accuracy": f"{PUBLIC_SCRATCH[0]:.2f}-{PUBLIC_SCRATCH[1]:.2f}", "sensitivity": np.nan,
         "specificity": np.nan, "precision": np.nan, "F1": np.nan, "AUC": np.nan},
    ]
    res.table("q2_metrics", pd.DataFrame(rows).fillna("-"),
              f"Test-set performance ({card['n_test']} images), sensitivity = recall of PNEUMONIA, "
              "specificity = recall of NORMAL.")
    res.figure("q2_curves", plots.training_curves(card["history"]),
               "Training curves: loss and AUC per epoch on the (augmented) training and the validation split.")
    labels = ("NORMAL", "PNEUMONIA")
    cm_v = np.array([[testv["tn"], testv["fp"]], [testv["fn"], testv["tp"]]])
    cm_5 = np.array([[test05["tn"], test05["fp"]], [test05["fn"], test05["tp"]]])
    res.figure("q2_cm", plots.confusion({
        f"threshold {card['val_threshold']:.3f} (validation)": cm_v, "threshold 0.5": cm_5}, labels),
        "Test-set confusion matrices.")
    p_test = predict_probs(model, p.x("test"))
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
    return res


def _cols(m: dict) -> dict:
    return {"accuracy": m["accuracy"], "sensitivity": m["sensitivity"], "specificity": m["specificity"],
            "precision": m["precision"], "F1": m["f1"], "AUC": m["auc"]}


SECTION = Section(
    name="q2", title="Q2 A CNN classifier", run=run,
    sources=tuple(lib("plots", "model", "robustness") + [Path(__file__)]),
    config=("train.", "augment.", "data."), models=("main",),
    subs=(
        Sub("Q2.1", "Architecture and training", "q2_1.md", tables=("q2_arch",), figures=("q2_curves",)),
        Sub("Q2.2", "Test-set performance", "q2_2.md", tables=("q2_metrics",), figures=("q2_cm", "q2_roc")),
    ))

"""Q2: the CNN classifier, its training and its test-set performance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.metrics import roc_curve

from xaikit import eda, intervals, plots
from xaikit.data import patient_id
from xaikit.model import architecture_table
from xaikit.pipeline import to_float
from xaikit.robustness import blur_sensitivity
from xaikit.train import predict_probs


from . import architecture, measures, models, q2_errors, sources
from .context import Context
from .section import Appendix, Result, Section, Sub

KERMANY = {"model": "Kermany et al. 2018 (transfer learning, Inception v3)", "accuracy": 0.928,
           "sensitivity": 0.932, "specificity": 0.901, "auc": 0.968}
CI_METRICS = ("accuracy", "sensitivity", "specificity", "auc")
# The performance target of this section is verdicts.target_<metric> (set with Q2's first version, before any
# test result): "met" when every metric's interval lies at or above its floor. The patient-clustered intervals
# use verdicts.performance_bootstrap draws.
CLUSTERED_METHOD = ("patient-clustered bootstrap ({n} draws), Youden threshold re-selected on a "
                    "patient-clustered validation resample in each draw")


def performance_target(cfg) -> dict:
    """The floor of each metric of Q2's target, from ``verdicts.target_<metric>``."""
    return {m: cfg[f"verdicts.target_{m}"] for m in ("auc", "accuracy", "sensitivity", "specificity")}


def versus(ours: dict, theirs: float) -> str:
    """Where a published point value lies against our interval."""
    return "below" if theirs < ours["lo"] else "above" if theirs > ours["hi"] else "within"


TARGET_WORDS = ("met", "missed", "cannot tell")


def target_verdict(ci: dict, target: dict) -> dict:
    """Per metric "met" (interval wholly at or above the floor), "missed" (wholly below) or
    "cannot tell"; overall "met" only when every metric is met, "missed" when any is missed."""
    per = {m: "met" if ci[m]["lo"] >= t else "missed" if ci[m]["hi"] < t else "cannot tell"
           for m, t in target.items()}
    words = set(per.values())
    overall = "missed" if "missed" in words else "met" if words == {"met"} else "cannot tell"
    return {"per_metric": per, "verdict": overall, "met": overall == "met", "floors": dict(target),
            "says": measures.says(overall, TARGET_WORDS)}


def groups(labels: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Patient ids per class, as in xaikit.eda: ``"<label>:<patient id of the file name>"``."""
    return np.array([f"{lab}:{patient_id(str(n).rsplit('/', 1)[-1])}" for lab, n in zip(labels, names)])


def sharpness_direction(train: dict, test: dict, blur_shift: dict) -> dict:
    """What a sharpness shift between training and test predicts for the errors, per true class.

    ``train``/``test``: median variance of the Laplacian per class (test labels describe the
    errors; they choose nothing). ``blur_shift``: the change of P(PNEUMONIA) when validation NORMAL
    images are blurred, an estimate {value, lo, hi}. Judged by its interval: above 0, the model
    reads blur as PNEUMONIA (sharp as NORMAL), so test images of a class that are less sharp than
    in training predict more PNEUMONIA calls for that class and sharper ones more NORMAL calls;
    below 0 the reverse; an interval containing 0 predicts no direction."""
    reads = "sharp_is_normal" if blur_shift["lo"] > 0 else "blur_is_normal" if blur_shift["hi"] < 0 else "cannot tell"
    out = {"model_reads": reads, "model_reads_sharp_as_normal": reads == "sharp_is_normal",
           "reads_says": measures.says(reads, ("sharp_is_normal", "blur_is_normal", "cannot tell")),
           "direction_known": reads != "cannot tell"}
    for c in ("NORMAL", "PNEUMONIA"):
        sharper = test[c] > train[c]
        toward = (None if reads == "cannot tell" else
                  ("NORMAL" if sharper else "PNEUMONIA") if reads == "sharp_is_normal" else
                  ("PNEUMONIA" if sharper else "NORMAL"))
        out[c] = {"test_sharper": bool(sharper), "predicts": toward,
                  "predicts_errors": bool(toward is not None and toward != c)}
    # false positives are NORMAL images called PNEUMONIA; false negatives the reverse
    out["predicts_more_fp"] = out["NORMAL"]["predicts_errors"]
    out["predicts_more_fn"] = out["PNEUMONIA"]["predicts_errors"]
    out["sharper_class"] = "NORMAL" if train["NORMAL"] > train["PNEUMONIA"] else "PNEUMONIA"
    return out


def blur_shifts(model, images: np.ndarray, sigma: float) -> np.ndarray:
    """Per image: P(PNEUMONIA) of the Gaussian-blurred image minus that of the image, the same
    blur as xaikit.robustness.blur_sensitivity (which reports only the mean)."""
    x = to_float(images)
    return predict_probs(model, ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))) - predict_probs(model, x)


SEED_METRICS = CI_METRICS + ("precision", "f1")


def _replicates(ctx: Context, card: dict) -> dict:
    """Test metrics (each at its own validation threshold) over the seeds of the main recipe:
    main and main-2..r; mean, min and max per metric."""
    cards = [card] + [ctx.model(m)[1] for m in models.expand(ctx, "replicates")]
    per = [c["test"]["at_val_threshold"] for c in cards]
    out = {"n": len(cards), "several": len(cards) > 1, "seeds": [int(c.get("seed", ctx.cfg["train.seed"])) for c in cards],
           "models": ["main"] + list(models.expand(ctx, "replicates")),
           "val_auc": [float(c["val"]["auc"]) for c in cards],
           "thresholds": [float(c["val_threshold"]) for c in cards]}
    out["seeds_text"] = ", ".join(str(sd) for sd in out["seeds"])
    for m in SEED_METRICS:
        v = np.array([float(d[m]) for d in per])
        out[m] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
                  "values": v.tolist()}
    return out


def _fixed_threshold(y, scores, val_threshold: float, n_boot: int, seed: int, level: float) -> dict:
    """Intervals with images independent and the threshold fixed, at the validation threshold and at 0.5
    (the AUC, which no threshold changes, resampled once for both)."""
    auc = intervals.auc_bootstrap(y, scores, n_boot=n_boot, seed=seed, level=level)
    return {tag: {k: v.as_dict() for k, v in intervals.classification_intervals(
                y, scores, thr, n_boot=n_boot, seed=seed, level=level, auc=auc).items()}
            for tag, thr in (("at_val", val_threshold), ("at_05", 0.5))}


def run(ctx: Context) -> Result:
    model, card = ctx.model("main")
    p = ctx.prepared()
    res = Result()
    _architecture(res, ctx, model, card)                          # Q2.1
    p_test = predict_probs(model, p.x("test"))
    p_val = predict_probs(model, p.x("val"))
    _performance(res, ctx, card, p, p_val, p_test)                # Q2.2
    _metric_tables(res, ctx, card)
    _performance_figures(res, card, p, p_val, p_test)
    _sharpness_shift(res, ctx, model, card, p)                    # Q2.2: is the dominant error a sharpness shift?
    q2_errors.run(ctx, model, card, res)                          # Q2.3
    return res


def _architecture(res: Result, ctx: Context, model, card: dict) -> None:
    """Q2.1's numbers (model, params, train) and table q2_arch: the architecture in use and its training."""
    n = res.numbers
    arch = architecture_table(model)
    desc = n["model"] = architecture.describe(ctx, model)      # Q2.1's words come from the model in use
    desc.update(designed_here=desc["architecture"] == "baseline" and not desc["external"],
                n_conv=len(desc["conv_layers"]), conv_text=", ".join(desc["conv_layers"]),
                input_text=" x ".join(str(d) for d in desc["input"]), sigmoid=desc["head"] == "sigmoid",
                has_gradcam_layer=desc["gradcam_layer"] is not None)
    res.table("q2_arch", pd.DataFrame(arch),
              f"Architecture of the classifier `{desc['name']}` ({desc['n_layers']} layers, read from the Keras model in "
              "use" + (f", {Path(desc['path']).name}, trained elsewhere" if desc["external"] else
                       f", built by model.architecture = {desc['architecture']}") + ").")
    t = ctx.cfg.section("train")
    n["params"] = int(model.count_params())
    n["train"] = {**t, "epochs_run": card["epochs_run"], "best_epoch": card["best_epoch"],
                  "seconds": card["seconds"], "minutes": card["seconds"] / 60,
                  "n_train": card["n_train"], "n_val": card["n_val"], "n_test": card["n_test"],
                  "best_is_last": card["best_epoch"] == card["epochs_run"]}   # the curves' sentence (Q2.1)


def _performance(res: Result, ctx: Context, card: dict, p, p_val, p_test) -> None:
    """Q2.2's numbers: test metrics at both thresholds, their intervals, and the verdicts drawn from them."""
    n = res.numbers
    n["val_threshold"] = card["val_threshold"]
    n["val"] = card["val"]
    test05, testv = card["test"]["at_0.5"], card["test"]["at_val_threshold"]
    n["test"] = {"at_05": test05, "at_val": testv}
    n["kermany"] = KERMANY
    n["test_auc_below_val"], n["test_ci"] = _test_intervals(ctx, card, p, p_val, p_test)
    ci = n["test_ci"]
    # Q2.2: specificity is the weak side when its interval lies wholly below sensitivity's
    n["specificity_weak"] = bool(ci["at_val"]["specificity"]["hi"] < ci["at_val"]["sensitivity"]["lo"])
    # Kermany et al. report point values; ours carry intervals: where does theirs lie?
    n["vs_kermany"] = {m: versus(ci["at_val"][m], KERMANY[m]) for m in CI_METRICS}
    n["beats_kermany"] = all(v == "below" for v in n["vs_kermany"].values())
    n["target"] = target_verdict(ci["at_val"], performance_target(ctx.cfg))
    n["meets_target"] = n["target"]["met"]
    n["dominant_error"] = ("false positives (NORMAL images called PNEUMONIA)" if testv["fp"] > testv["fn"]
                           else "false negatives (PNEUMONIA images called NORMAL)")
    n["fp"], n["fn"] = testv["fp"], testv["fn"]


def _test_intervals(ctx: Context, card: dict, p, p_val, p_test) -> tuple[bool, dict]:
    """Q2.2's intervals (numbers["test_ci"]) and whether the test AUC lies below the validation AUC (the ROC sentence)."""
    level = 1 - ctx.cfg["verdicts.alpha"]
    n_boot = ctx.cfg["verdicts.performance_bootstrap"]
    # the primary intervals at the validation threshold: patients resampled, threshold re-selected
    cl = intervals.clustered_threshold_bootstrap(
        p.y("val"), p_val, groups(p.y("val"), p.names[p.idx("val")]),
        p.y("test"), p_test, groups(p.y("test"), p.names[p.idx("test")]),
        n_boot=n_boot, seed=ctx.cfg["data.seed"], level=level)
    if not np.isclose(cl.threshold.value, card["val_threshold"]):
        raise ValueError(f"the Youden threshold of the cached model's validation scores expects "
                         f"{card['val_threshold']}, got {cl.threshold.value}: the model card is stale")
    auc_below_val = bool(cl.auc.hi < card["val"]["auc"])    # the ROC figure's sentence (Q2.2)
    # secondary: images independent, threshold fixed (Wilson; AUC resampled within each class)
    simple = _fixed_threshold(p.y("test"), p_test, card["val_threshold"], n_boot, ctx.cfg["data.seed"], level)
    ci = {"at_val": {k: v.as_dict() for k, v in cl.metrics().items()}, "at_05": simple["at_05"],
          "at_val_fixed": simple["at_val"], "level": level, "n_boot": n_boot,
          "method": CLUSTERED_METHOD.format(n=n_boot),
          "method_at_05": "Wilson for accuracy, sensitivity and specificity, bootstrap within each class for "
                          "AUC; images independent, threshold fixed",
          "threshold": cl.threshold.as_dict(), "patients": cl.patients, "largest_cluster": cl.largest}
    ci["clustered_wider"] = {m: bool(ci["at_val"][m]["hi"] - ci["at_val"][m]["lo"] >
                                     simple["at_val"][m]["hi"] - simple["at_val"][m]["lo"]) for m in CI_METRICS}
    return auc_below_val, ci


def _metric_tables(res: Result, ctx: Context, card: dict) -> None:
    """Q2.2's numbers["replicates"] and tables q2_seeds and q2_metrics: test performance with intervals and seeds."""
    ci = res.numbers["test_ci"]
    seeds = _replicates(ctx, card)
    res.numbers["replicates"] = seeds
    rows = _metric_rows(card, ci, seeds)
    # one row per seed of the main recipe (a single row when train.replicates = 1)
    res.table("q2_seeds", pd.DataFrame([
        {"model": m, "seed": sd, "validation AUC": f"{va:.3f}", "threshold": f"{th:.3f}",
         **{k: f"{seeds[k]['values'][i]:.3f}" for k in SEED_METRICS}}
        for i, (m, sd, va, th) in enumerate(zip(seeds["models"], seeds["seeds"], seeds["val_auc"],
                                                seeds["thresholds"]))]),
        f"Test metrics of each of the {seeds['n']} seeds of the main recipe, each at its own validation "
        "threshold (point values; the intervals over patients of the main model are in the table above).")
    pt, lg = ci["patients"]["test"], ci["largest_cluster"]["test"]
    res.table("q2_metrics", pd.DataFrame(rows).fillna("-"),
              f"Test-set performance ({card['n_test']} images of {pt['NORMAL']} NORMAL and {pt['PNEUMONIA']} "
              f"PNEUMONIA patient ids; at most {lg['NORMAL']} and {lg['PNEUMONIA']} images per id) with "
              f"{ci['level']:.0%} intervals. First row: {ci['method']}, so the interval carries the test patients' "
              "and the threshold's uncertainty; the point values use the build's threshold. Second and third "
              "rows: Wilson intervals for accuracy, sensitivity and specificity and a bootstrap of the test "
              f"images within each class for AUC ({ci['n_boot']:,} resamples), images treated as independent and "
              "the threshold as fixed. Sensitivity = recall of PNEUMONIA, specificity = recall of NORMAL. "
              "Kermany et al. report point values only.")


def _metric_rows(card: dict, ci: dict, seeds: dict) -> list[dict]:
    """Q2.2's rows of table q2_metrics: this CNN at both thresholds, its seeds (if several) and Kermany et al."""
    test05, testv = card["test"]["at_0.5"], card["test"]["at_val_threshold"]

    def cell(tag, m):
        e = ci[tag][m]
        return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"

    rows = [
        {"model": f"this CNN, validation threshold {card['val_threshold']:.3f} (patient-clustered, "
                  "threshold re-selected)",
         **{m: cell("at_val", m) for m in CI_METRICS}, "precision": testv["precision"], "F1": testv["f1"]},
        {"model": f"this CNN, validation threshold {card['val_threshold']:.3f} (images independent, "
                  "threshold fixed)",
         **{m: cell("at_val_fixed", m) for m in CI_METRICS}, "precision": testv["precision"], "F1": testv["f1"]},
        {"model": "this CNN, threshold 0.5 (images independent)", **{m: cell("at_05", m) for m in CI_METRICS},
         "precision": test05["precision"], "F1": test05["f1"]},
        {"model": KERMANY["model"], **{m: KERMANY[m] for m in CI_METRICS}, "precision": np.nan, "F1": np.nan},
    ]
    if seeds["several"]:
        rows.insert(3, {"model": f"this recipe, {seeds['n']} seeds (mean [min, max]), validation thresholds",
                        **{m: f"{seeds[m]['mean']:.3f} [{seeds[m]['min']:.3f}, {seeds[m]['max']:.3f}]"
                           for m in CI_METRICS},
                        "precision": seeds["precision"]["mean"], "F1": seeds["f1"]["mean"]})
    return rows


def _performance_figures(res: Result, card: dict, p, p_val, p_test) -> None:
    """Q2.1's figure q2_curves and Q2.2's figures q2_cm and q2_roc."""
    test05, testv = card["test"]["at_0.5"], card["test"]["at_val_threshold"]
    if card["history"]:
        res.figure("q2_curves", plots.training_curves(card["history"]),
                   "Training curves: loss and AUC per epoch on the (augmented) training and the validation split.")
    else:                                   # a model trained elsewhere: its file carries no history
        res.figure("q2_curves", plots.note_figure("trained elsewhere: the model file carries no training history"),
                   "No training curves: the model was trained elsewhere and is only evaluated here.")
    labels = ("NORMAL", "PNEUMONIA")
    cm_v = np.array([[testv["tn"], testv["fp"]], [testv["fn"], testv["tp"]]])
    cm_5 = np.array([[test05["tn"], test05["fp"]], [test05["fn"], test05["tp"]]])
    res.figure("q2_cm", plots.confusion({
        f"threshold {card['val_threshold']:.3f} (validation)": cm_v, "threshold 0.5": cm_5}, labels),
        "Test-set confusion matrices.")
    curves = {}
    for name, y, s in (("test", p.y("test"), p_test), ("validation", p.y("val"), p_val)):
        fpr, tpr, _ = roc_curve(y, s)
        curves[name] = (fpr, tpr, float(np.trapezoid(tpr, fpr)))
    res.figure("q2_roc", plots.roc(curves, {
        "test at validation threshold": (1 - testv["specificity"], testv["sensitivity"])}),
        "ROC curves on the test and validation splits; the dot marks the operating point.")


def _sharpness_shift(res: Result, ctx: Context, model, card: dict, p) -> None:
    """Q2.2's numbers blur and sharpness: how blur moves the model, and what the test split's sharpness predicts."""
    n = res.numbers
    labels = ("NORMAL", "PNEUMONIA")
    level = 1 - ctx.cfg["verdicts.alpha"]
    n_boot = ctx.cfg["verdicts.performance_bootstrap"]
    testv = card["test"]["at_val_threshold"]
    sigma = ctx.cfg["attribution.shortcut_blur_sigma"] * ctx.cfg["data.image_size"] / 128
    yv = p.y("val")
    n["blur"] = {"sigma": sigma, "threshold": float(card["val_threshold"]),
                 **{c: blur_sensitivity(model, p.x("val")[yv == k], sigma, threshold=float(card["val_threshold"])).__dict__
                    for k, c in enumerate(labels)}}
    # what a sharpness shift between training and test predicts for the errors (test labels describe)
    shifts = blur_shifts(model, p.x("val")[yv == 0], sigma)
    if len(shifts) >= 2:
        shift = intervals.mean_ci(shifts, n_boot=n_boot, seed=ctx.cfg["data.seed"], level=level)
    else:        # an interval needs two images; NaN ends decide no direction ("cannot tell")
        shift = intervals.Estimate(float(np.mean(shifts)) if len(shifts) else float("nan"),
                                   float("nan"), float("nan"), int(len(shifts)))
    n["blur"]["NORMAL"]["shift_ci"] = shift.as_dict()
    sharp = {s: eda.sharpness(p.x(s)) for s in ("train", "test")}
    med = {s: {c: float(np.median(sharp[s][p.y(s) == k])) for k, c in enumerate(labels)} for s in sharp}
    n["sharpness"] = {"train": med["train"], "test": med["test"],
                      **sharpness_direction(med["train"], med["test"], shift.as_dict())}
    n["sharpness"]["explains_dominant"] = bool(
        n["sharpness"]["predicts_more_fp"] if testv["fp"] > testv["fn"] else n["sharpness"]["predicts_more_fn"])


SECTION = Section(
    name="q2", title="Q2 A CNN classifier", run=run,
    sources=sources.of(__file__, measures.HAND_MASKS),
    config=("model.", "train.", "augment.", "data.", "attribution.", "verdicts.alpha", "verdicts.border_frac",
            "verdicts.target_", "verdicts.performance_bootstrap", "verdicts.family_min_train"),
    models=("main", "replicates"),
    subs=(
        Sub("Q2.1", "Architecture and training", "q2_1.md", tables=(Appendix("q2_arch"),), figures=("q2_curves",)),
        Sub("Q2.2", "Test-set performance", "q2_2.md", tables=(Appendix("q2_metrics"), Appendix("q2_seeds")), figures=("q2_cm", Appendix("q2_roc"))),
        Sub("Q2.3", "Where the classifier errs, and what it looks at", "q2_3.md",
            figures=(Appendix("q2_errors"),), tables=(Appendix("q2_errors_maps"), Appendix("q2_errors_common"))),
    ))

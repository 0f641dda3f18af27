"""Q5: the data randomization test (Adebayo et al. 2018) with a control and a computed verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import plots, similarity
from xaikit.data import CLASSES
from xaikit.gradcam import GradcamExplainer
from xaikit.model import logits_model

from . import measures, models, samples
from .context import Context, lib, log
from .q3_ig import baseline_images, explain_ig
from .section import Result, Section, Sub

METRICS = ("spearman_abs", "spearman_signed", "ssim", "hog")
SE_FACTOR = 2.0   # "clearly below": the gap exceeds 2 standard errors
WEAK_REFERENCE = 0.1   # a metric whose main-vs-control similarity is below this has little power


def _measures(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    a2, b2 = similarity.to_2d(a), similarity.to_2d(b)
    return {"spearman_abs": similarity.pairwise(np.abs(a2), np.abs(b2), similarity.spearman),
            "spearman_signed": similarity.pairwise(a2, b2, similarity.spearman),
            "ssim": similarity.pairwise(np.abs(a2), np.abs(b2), similarity.ssim),
            "hog": similarity.pairwise(np.abs(a2), np.abs(b2), similarity.hog_pearson)}


def _se(v: np.ndarray) -> float:
    return float(np.std(v) / np.sqrt(max(1, len(v))))


def verdicts(random: dict, control: dict, pairs: dict) -> dict:
    """Per metric: pass when main-vs-random is clearly below main-vs-control and not above
    the random-pair baseline (both judged with SE_FACTOR standard errors)."""
    out = {}
    for m in METRICS:
        r, c, p = random[m], control[m], pairs[m]
        below_control = (c.mean() - r.mean()) > SE_FACTOR * np.hypot(_se(r), _se(c))
        not_above_pairs = r.mean() <= p.mean() + SE_FACTOR * np.hypot(_se(r), _se(p))
        out[m] = {"pass": bool(below_control and not_above_pairs),
                  "below_control": bool(below_control), "not_above_pairs": bool(not_above_pairs)}
    passes = sum(v["pass"] for v in out.values())
    out["overall"] = "pass" if passes == len(METRICS) else "fail" if passes == 0 else "mixed"
    out["passes"] = passes
    return out


def run(ctx: Context) -> Result:
    _, main_card = ctx.model("main")
    rand_model, rand_card = ctx.model("random")
    ctrl_model, ctrl_card = ctx.model("control")
    a = ctx.cfg.section("attribution")
    ig = ctx.load_arrays("ig_main")
    cam = ctx.load_arrays("gradcam_main")
    x, y, target, names = ig["inputs"], ig["labels"], ig["targets"], ig["names"]
    s = samples.choose(ctx)
    rp = s.report_pos
    maps = {("IG", "main"): ig["attributions"], ("Grad-CAM", "main"): cam["maps"]}
    gaps = {"main": float(np.median(ig["gaps"]))}
    b = baseline_images(a["ig_baseline"], x, ctx)
    for tag, m in (("random", rand_model), ("control", ctrl_model)):
        log(f"IG and Grad-CAM of model {tag} for {len(x)} images")
        # fixed steps: these maps feed similarity measures, not completeness claims
        ig_tag = explain_ig(ctx, logits_model(m), x, target, a["ig_baseline"], adaptive=False, b=b)
        maps[("IG", tag)] = ig_tag.attributions
        gaps[tag] = float(np.median(ig_tag.gap))
        maps[("Grad-CAM", tag)] = GradcamExplainer(m, a["gradcam_layer"])(x, target)
    ctx.save_arrays("q5_maps", names=names, targets=target,
                    **{f"{meth}_{tag}".replace("-", "").lower(): v for (meth, tag), v in maps.items()})
    rng = np.random.default_rng(a["seed"] + 1)
    partner = (np.arange(len(x)) + rng.integers(1, len(x), len(x))) % len(x)   # j != i
    res = Result()
    n = res.numbers
    _, _, permuted = models.random_subset(ctx)
    p = ctx.prepared()
    n["random_model"] = {"train_accuracy": rand_card["train_accuracy"], "epochs": rand_card["epochs_run"],
                         "max_epochs": ctx.cfg["random_labels.max_epochs"],
                         "target": rand_card["target_accuracy"], "reached": rand_card["reached_target"],
                         "n_train": rand_card["n_train"], "changed_labels": rand_card["changed_labels"],
                         "seconds": rand_card["seconds"],
                         "test_accuracy": rand_card["test"]["at_0.5"]["accuracy"],
                         "test_auc": rand_card["test"]["at_0.5"]["auc"]}
    n["control_model"] = {"train_accuracy": ctrl_card["train_accuracy"], "epochs": ctrl_card["epochs_run"],
                          "seconds": ctrl_card["seconds"],
                          "test_accuracy": ctrl_card["test"]["at_0.5"]["accuracy"],
                          "test_auc": ctrl_card["test"]["at_0.5"]["auc"]}
    n["majority_test_accuracy"] = float(np.mean(p.y("test") == 1))
    n["n_images"] = int(len(x))
    n["n_subset_total"] = int(len(p.idx("train")))
    n["permuted_positive_share"] = float(np.mean(permuted))
    rows, bars, refs = [], {}, {}
    for meth in ("IG", "Grad-CAM"):
        main_maps = maps[(meth, "main")]
        vs_random = _measures(main_maps, maps[(meth, "random")])
        vs_control = _measures(main_maps, maps[(meth, "control")])
        vs_pairs = _measures(main_maps, main_maps[partner])
        v = verdicts(vs_random, vs_control, vs_pairs)
        key = meth.replace("-", "").lower()
        n[key] = {m: {"random": similarity.summarize(vs_random[m]).__dict__,
                      "control": similarity.summarize(vs_control[m]).__dict__,
                      "pairs": similarity.summarize(vs_pairs[m]).__dict__, **v[m]} for m in METRICS}
        n[key]["overall"], n[key]["passes"] = v["overall"], v["passes"]
        n[key]["verb"] = {"pass": "passes", "fail": "fails", "mixed": "gives a mixed result in"}[v["overall"]]
        n[key]["weak_references"] = [m for m in METRICS
                                     if similarity.summarize(vs_control[m]).mean < WEAK_REFERENCE]
        for m in METRICS:
            rows.append({"method": meth, "metric": m,
                         "main vs random": f"{vs_random[m].mean():.3f} ± {vs_random[m].std():.3f}",
                         "main vs control": f"{vs_control[m].mean():.3f} ± {vs_control[m].std():.3f}",
                         "random pairs (main)": f"{vs_pairs[m].mean():.3f} ± {vs_pairs[m].std():.3f}",
                         "verdict": "pass" if v[m]["pass"] else "fail"})
            label = f"{meth} {m}"
            bars[label] = {"main vs random-label": (vs_random[m].mean(), vs_random[m].std()),
                           "main vs control": (vs_control[m].mean(), vs_control[m].std())}
            refs[label] = float(vs_pairs[m].mean())
    # IG "looks like the input": the (x - baseline) factor imprints the image on any model's map
    input_term = np.abs(similarity.to_2d(x - (b.mean(0) if b.ndim == 5 else b)))
    n["input_likeness"] = {tag: float(similarity.pairwise(np.abs(similarity.to_2d(maps[("IG", tag)])),
                                                          input_term, similarity.spearman).mean())
                           for tag in ("main", "random", "control")}
    n["ig_median_gap"] = gaps
    n["se_factor"] = SE_FACTOR
    n["weak_reference"] = WEAK_REFERENCE
    n["n_metrics"] = len(METRICS)
    n["n_report"] = int(len(rp))
    n["both_pass"] = n["ig"]["overall"] == "pass" and n["gradcam"]["overall"] == "pass"
    res.table("q5_models", pd.DataFrame([
        {"model": "main (Q2)", "labels": "true", "train images": main_card["n_train"],
         "epochs": main_card["epochs_run"], "train accuracy": np.nan,
         "test accuracy": main_card["test"]["at_0.5"]["accuracy"],
         "test AUC": main_card["test"]["at_0.5"]["auc"]},
        {"model": "random-label", "labels": "permuted", "train images": rand_card["n_train"],
         "epochs": rand_card["epochs_run"], "train accuracy": rand_card["train_accuracy"],
         "test accuracy": n["random_model"]["test_accuracy"], "test AUC": n["random_model"]["test_auc"]},
        {"model": "control", "labels": "true", "train images": ctrl_card["n_train"],
         "epochs": ctrl_card["epochs_run"], "train accuracy": ctrl_card["train_accuracy"],
         "test accuracy": n["control_model"]["test_accuracy"], "test AUC": n["control_model"]["test_auc"]},
    ]).fillna("-"), "The three models. Train accuracy is on the labels each model was trained on "
       "(permuted for the random-label model), at threshold 0.5, without dropout or augmentation.")
    res.table("q5_metrics", pd.DataFrame(rows),
              f"Similarity of maps, mean ± std over {len(x)} test images, and the verdict per metric.")
    grid = []
    for i in rp:
        grid.append([plots.Panel(x[i], "gray", f"{CLASSES[y[i]]}")] +
                    [plots.Panel(maps[(meth, tag)][i], "heat", clip=99 if meth == "IG" else 100)
                     for meth in ("IG", "Grad-CAM") for tag in ("main", "random", "control")])
    res.figure("q5_grid", plots.panel_grid(grid, col_titles=(
        "image", "IG main", "IG random-label", "IG control", "Grad-CAM main", "Grad-CAM random-label",
        "Grad-CAM control"), cell=1.15),
        f"Maps of the {len(rp)} report images under the main, random-label and control models (|IG| and Grad-CAM).")
    res.figure("q5_bars", plots.grouped_bars(bars, ylabel="similarity to the main model's map",
                                             reference=refs),
               "Similarity to the main model's maps (mean ± std); dashed lines: random pairs of "
               "different images under the main model (Arun et al. 2021 baseline).")
    return res


SECTION = Section(
    name="q5", title="Q5 Sanity check: data randomization test", run=run,
    sources=tuple(lib("similarity", "gradcam", "ig", "model") + measures.SOURCES +
                  [Path(__file__), Path(samples.__file__)]),
    config=("data.", "attribution.", "random_labels."), models=("main", "random", "control"),
    after=("q3", "q4"),
    subs=(
        Sub("Q5.1", "A model trained on permuted labels", "q5_1.md", tables=("q5_models",)),
        Sub("Q5.2", "Comparing the maps with numbers", "q5_2.md", tables=("q5_metrics",),
            figures=("q5_bars",)),
        Sub("Q5.3", "Maps side by side and the verdict", "q5_3.md", figures=("q5_grid",)),
    ))

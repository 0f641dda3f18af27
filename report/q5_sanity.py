"""Q5: sanity checks (Adebayo et al. 2018).

- Data randomization test as a replicated, matched experiment: k random-label models and k
  true-label controls (same subset, recipe and epochs; only labels and seeds differ). Per method
  and metric: is sim(control_i, random_j) clearly below the control-to-control ceiling, and
  within a margin fixed beforehand of the different-image floor? 95% intervals from a bootstrap
  over images and model seeds; null references (input edge map, random map) beside them.
- Cascading model parameter randomization of the main model, top-down and bottom-up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import plots, randomization, sanity, similarity
from xaikit.data import CLASSES
from xaikit.gradcam import GradcamExplainer

from . import measures, models, samples
from .context import Context, lib, log
from .q3_ig import baseline_images, explain_ig, explained_model
from .section import Result, Section, Sub

METRICS = similarity.MEASURES
METHODS = (("ig", "IG"), ("gradcam", "Grad-CAM"))
# Grad-CAM maps are non-negative: signed and absolute Spearman coincide, so it is counted once
METHOD_METRICS = {"ig": METRICS, "gradcam": tuple(m for m in METRICS if m != "spearman_signed")}
CASCADE_METRICS = ("spearman_abs", "spearman_signed", "ssim")
RANDOM_AUC_BAND = (0.40, 0.60)   # a random-label model's test AUC should sit at chance
CONTROL_FIT = 0.90               # a control "fits its true labels" at this train accuracy
SENSITIVE = 0.2                  # cascade: similarity below this after one randomized layer


def q5_positions(y: np.ndarray, per_class: int) -> np.ndarray:
    """Positions (in Q3's sample) of the first ``per_class`` images of each class; the report
    images come first in each class, so they are included."""
    return np.concatenate([np.flatnonzero(y == k)[:per_class] for k in (0, 1)])


def overall(passed: dict[str, bool]) -> str:
    """A method's verdict over metrics: pass (all), fail (none) or mixed."""
    if not passed:
        raise ValueError("overall expects at least one metric")
    k = sum(bool(v) for v in passed.values())
    return "pass" if k == len(passed) else "fail" if k == 0 else "mixed"


def _maps(ctx: Context, model, x, target, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IG, Grad-CAM, IG completeness gaps): fixed step count and baseline for every model."""
    a = ctx.cfg.section("attribution")
    ig = explain_ig(ctx, explained_model(model), x, target, a["ig_baseline"], adaptive=False, b=b)
    cam = GradcamExplainer(model, a["gradcam_layer"])(x, target)
    return similarity.to_2d(ig.attributions), cam, ig.gap


def _label(iv: dict) -> str:
    return f"{iv['mean']:.3f} [{iv['lo']:.3f}, {iv['hi']:.3f}]"


def run(ctx: Context) -> Result:
    main_model, main_card = ctx.model("main")
    cfg = ctx.cfg
    a, sc = cfg.section("attribution"), cfg.section("sanity")
    k = cfg["random_labels.seeds"]
    arms = {kind: [models.arm(kind, i) for i in range(1, k + 1)] for kind in ("random", "control")}
    ig = ctx.load_arrays("ig_main")
    pos = q5_positions(ig["labels"], sc["images_per_class"])
    x, y, target, names = ig["inputs"][pos], ig["labels"][pos], ig["targets"][pos], ig["names"][pos]
    b = baseline_images(a["ig_baseline"], x, ctx)
    maps, gaps, cards = {}, {}, {"main": main_card}
    for name in ("main",) + tuple(arms["random"]) + tuple(arms["control"]):
        model, cards[name] = ctx.model(name)
        log(f"IG and Grad-CAM of model {name} for {len(x)} images")
        maps[("ig", name)], maps[("gradcam", name)], gaps[name] = _maps(ctx, model, x, target, b)
    ctx.save_arrays("q5_maps", names=names, targets=target, labels=y,
                    **{f"{meth}_{name}".replace("-", "_"): v for (meth, name), v in maps.items()})
    rng = np.random.default_rng(sc["seed"])
    n_img = len(x)
    partner = (np.arange(n_img) + rng.integers(1, n_img, n_img)) % n_img   # another image, j != i
    nulls = {"edge": similarity.edge_map(x), "random_map": rng.uniform(size=x.shape[:3])}
    flat = {meth: {name: int(similarity.is_flat(maps[(meth, name)]).sum()) for name in cards}
            for meth, _ in METHODS}

    res = Result()
    n = res.numbers
    n["n_seeds"] = k
    n["n_images"] = n_img
    n["images_per_class"] = sc["images_per_class"]
    n["margin"] = sc["equivalence_margin"]
    n["n_boot"] = sc["bootstrap"]
    n["flat"] = flat
    n["ig_gaps"] = {name: {"median": float(np.median(g)), "max": float(np.max(g))} for name, g in gaps.items()}
    n["models"] = _model_numbers(ctx, cards, arms)
    n["n_subset_total"] = int(len(ctx.prepared().idx("train")))
    n["majority_test_accuracy"] = float(np.mean(ctx.prepared().y("test") == 1))
    n["random_auc_band"] = list(RANDOM_AUC_BAND)
    n["control_fit"] = CONTROL_FIT

    rows, bars = [], {}
    for meth, title in METHODS:
        n[meth] = {"n_metrics": len(METHOD_METRICS[meth])}
        mm = {name: maps[(meth, name)] for name in cards}
        for metric in METHOD_METRICS[meth]:
            sim = lambda a, b: similarity.measure_stack(a, b, metric)   # noqa: E731
            cross = np.stack([np.stack([sim(mm[c], mm[r]) for c in arms["control"]]) for r in arms["random"]])
            ceiling = np.full((k, k, n_img), np.nan)
            for i in range(k):
                for j in range(i + 1, k):
                    ceiling[i, j] = ceiling[j, i] = sim(mm[arms["control"][i]], mm[arms["control"][j]])
            floor = np.stack([sim(mm[c], mm[c][partner]) for c in arms["control"]])
            result = sanity.randomization_test(cross, ceiling, floor, margin=sc["equivalence_margin"],
                                               n_boot=sc["bootstrap"], seed=sc["seed"])
            out = result.as_dict()
            boot = dict(n_boot=sc["bootstrap"], seed=sc["seed"])
            for null, nmap in nulls.items():
                out[null] = sanity.bootstrap_mean(
                    np.stack([similarity.measure_stack(mm[c], nmap, metric) for c in arms["control"]]), **boot).as_dict()
            out["main_random"] = sanity.bootstrap_mean(
                np.stack([similarity.measure_stack(mm["main"], mm[r], metric) for r in arms["random"]]), **boot).as_dict()
            out["main_control"] = sanity.bootstrap_mean(
                np.stack([similarity.measure_stack(mm["main"], mm[c], metric) for c in arms["control"]]), **boot).as_dict()
            n[meth][metric] = out
            rows.append({"method": title, "metric": metric,
                         "control vs random": _label(out["cross"]),
                         "control vs control": _label(out["ceiling"]),
                         "difference": _label(out["diff"]),
                         "different images": _label(out["floor"]),
                         "edge map": _label(out["edge"]), "random map": _label(out["random_map"]),
                         "verdict": "pass" if result.passed else "fail"})
            bars[f"{title} {metric}"] = {
                "control vs random": tuple(out["cross"][q] for q in ("mean", "lo", "hi")),
                "control vs control": tuple(out["ceiling"][q] for q in ("mean", "lo", "hi")),
                "different images": tuple(out["floor"][q] for q in ("mean", "lo", "hi")),
                "edge map": tuple(out["edge"][q] for q in ("mean", "lo", "hi"))}
        n[meth]["passes"] = sum(n[meth][m]["passed"] for m in METHOD_METRICS[meth])
        n[meth]["overall"] = overall({m: n[meth][m]["passed"] for m in METHOD_METRICS[meth]})
        n[meth]["verb"] = {"pass": "passes", "fail": "fails", "mixed": "gives a mixed result in"}[n[meth]["overall"]]
        n[meth]["edge_like"] = [m for m in METHOD_METRICS[meth]
                                if n[meth][m]["edge"]["lo"] > n[meth][m]["floor"]["hi"]]
    # IG "looks like the input": the (x - baseline) factor imprints the image on any model's map
    input_term = np.abs(similarity.to_2d(x - (b.mean(0) if b.ndim == 5 else b)))
    n["input_likeness"] = {kind: sanity.bootstrap_mean(np.stack([
        similarity.pairwise(np.abs(maps[("ig", name)]), input_term, similarity.spearman)
        for name in names_]), n_boot=sc["bootstrap"], seed=sc["seed"]).as_dict()
        for kind, names_ in (("main", ["main"]), ("random", arms["random"]), ("control", arms["control"]))}
    sig, ab = n["ig"]["spearman_signed"]["cross"], n["ig"]["spearman_abs"]["cross"]
    n["abs_flatters_ig"] = bool(ab["lo"] > sig["hi"])
    n["both_pass"] = n["ig"]["overall"] == "pass" and n["gradcam"]["overall"] == "pass"

    res.table("q5_models", _model_table(n["models"], flat, n["ig_gaps"]),
              f"The models of the data randomization test ({k} seeds per arm) and the main model. "
              "Train accuracy is on the labels each model was trained on (permuted for the random-label "
              "models), at threshold 0.5, without dropout or augmentation; test metrics use the true labels. "
              "Flat maps are excluded from every similarity.")
    res.table("q5_metrics", pd.DataFrame(rows),
              f"Similarity of maps, mean [95% interval] over {n_img} test images and {k} seeds per arm "
              f"(bootstrap over images and seeds, {sc['bootstrap']} resamples). Null references: the same "
              "control model's maps of two different images (Arun et al. 2021), a Sobel edge map of the "
              "input and a uniform random map, each compared with the control maps.")
    res.figure("q5_bars", plots.interval_bars(bars, ylabel="similarity (95% interval)"),
               "Similarity of the control models' maps to the random-label models' maps, to the other "
               "control seeds' maps (the ceiling), to their own maps of different images (the floor) and "
               "to the input's edge map.")
    s = samples.choose(ctx)
    rp = np.array([int(np.flatnonzero(pos == i)[0]) for i in s.report_pos if i in pos])
    grid = []
    show = ("main", arms["random"][0], arms["control"][0])
    for i in rp:
        grid.append([plots.Panel(x[i], "gray")] +
                    [plots.Panel(maps[(meth, tag)][i], "heat", clip=99 if meth == "ig" else 100)
                     for meth, _ in METHODS for tag in show])
    res.figure("q5_grid", plots.panel_grid(grid, row_titles=[CLASSES[y[i]] for i in rp], col_titles=(
        "image", "|IG|\nmain", f"|IG|\n{show[1]}", f"|IG|\n{show[2]}", "Grad-CAM\nmain",
        f"Grad-CAM\n{show[1]}", f"Grad-CAM\n{show[2]}"), cell=1.05),
        f"Maps of the {len(rp)} report images under the main model and the first seed of each arm.")
    n["n_report"] = int(len(rp))
    cas = np.concatenate([rp[y[rp] == c][: sc["cascade_images_per_class"]] for c in (0, 1)])
    orig = (maps[("ig", "main")][cas], maps[("gradcam", "main")][cas])   # the trained model's maps
    _cascade(ctx, main_model, x[cas], target[cas], b[:, cas] if b.ndim == 5 else b[cas], orig, res)
    return res


def _model_numbers(ctx: Context, cards: dict, arms: dict) -> dict:
    r = ctx.cfg.section("random_labels")
    out = {}
    for kind in ("random", "control"):
        rows = []
        for name in arms[kind]:
            c = cards[name]
            auc, acc = c["test"]["at_0.5"]["auc"], c["test"]["at_0.5"]["accuracy"]
            rows.append({"name": name, "seed": c.get("seed"), "epochs": c["epochs_run"],
                         "seconds": c["seconds"], "train_accuracy": c["train_accuracy"],
                         "n_train": c["n_train"], "test_accuracy": acc, "test_auc": auc,
                         "changed_labels": c.get("changed_labels"),
                         "ok": bool(c["train_accuracy"] >= r["target_accuracy"] and
                                    RANDOM_AUC_BAND[0] <= auc <= RANDOM_AUC_BAND[1]) if kind == "random"
                         else bool(c["train_accuracy"] >= CONTROL_FIT)})
        out[kind] = {"rows": rows, "all_ok": all(x["ok"] for x in rows),
                     "n_ok": sum(x["ok"] for x in rows),
                     "epochs": [x["epochs"] for x in rows],
                     "seconds_mean": float(np.mean([x["seconds"] for x in rows])),
                     "test_auc_min": float(min(x["test_auc"] for x in rows)),
                     "test_auc_max": float(max(x["test_auc"] for x in rows)),
                     "train_accuracy_min": float(min(x["train_accuracy"] for x in rows))}
    out["random"]["changed_labels_mean"] = float(np.mean([x["changed_labels"] for x in out["random"]["rows"]]))
    out["n_train"] = out["random"]["rows"][0]["n_train"]
    out["target"] = r["target_accuracy"]
    out["max_epochs"] = r["max_epochs"]
    return out


def _model_table(m: dict, flat: dict, gaps: dict) -> pd.DataFrame:
    rows = []
    for kind, labels in (("random", "permuted"), ("control", "true")):
        for r in m[kind]["rows"]:
            rows.append({"model": r["name"], "labels": labels, "seed": r["seed"], "train images": r["n_train"],
                         "epochs": r["epochs"], "train accuracy": r["train_accuracy"],
                         "test accuracy": r["test_accuracy"], "test AUC": r["test_auc"],
                         "flat IG / Grad-CAM": f"{flat['ig'][r['name']]} / {flat['gradcam'][r['name']]}",
                         "IG gap median / max": f"{gaps[r['name']]['median']:.2%} / {gaps[r['name']]['max']:.2%}",
                         "as intended": "yes" if r["ok"] else "no"})
    rows.append({"model": "main (Q2)", "labels": "true", "seed": "-", "train images": "-", "epochs": "-",
                 "train accuracy": np.nan, "test accuracy": np.nan, "test AUC": np.nan,
                 "flat IG / Grad-CAM": f"{flat['ig']['main']} / {flat['gradcam']['main']}",
                 "IG gap median / max": f"{gaps['main']['median']:.2%} / {gaps['main']['max']:.2%}",
                 "as intended": "-"})
    return pd.DataFrame(rows).fillna("-")


def _cascade(ctx: Context, model, x, target, b, orig: tuple, res: Result) -> None:
    """Q5.4: cascading randomization of the main model's layers, both orders; ``orig`` holds
    the trained model's (IG, Grad-CAM) maps of ``x``."""
    sc = ctx.cfg.section("sanity")
    a = ctx.cfg.section("attribution")
    log(f"cascading parameter randomization: {len(x)} images, both orders")
    curves, steps_labels, n = {}, {}, res.numbers
    n["cascade"] = {"n_images": int(len(x)), "layers": list(randomization.weighted_layers(model)),
                    "sensitive": SENSITIVE}
    for order in randomization.ORDERS:
        steps = randomization.cascade(model, order, seed=sc["seed"])
        steps_labels[order] = ["none"] + [s.randomized[-1] for s in steps]
        per = {("ig", m): [] for m in CASCADE_METRICS} | {("gradcam", m): [] for m in CASCADE_METRICS}
        for stage in [None] + steps:
            cur = orig if stage is None else _maps(ctx, stage.model, x, target, b)
            for j, (meth, _) in enumerate(METHODS):
                for m in CASCADE_METRICS:
                    v = similarity.measure_stack(orig[j], cur[j], m)
                    per[(meth, m)].append(sanity.bootstrap_mean(v, n_boot=sc["bootstrap"], seed=sc["seed"]))
        for meth, title in METHODS:
            curves[(title, order)] = {m: np.array([(i.mean, i.lo, i.hi) for i in per[(meth, m)]])
                                      for m in CASCADE_METRICS}
            c = n["cascade"].setdefault(meth, {})[order] = {
                m: [i.as_dict() for i in per[(meth, m)]] for m in CASCADE_METRICS}
            absolute, signed = per[(meth, "spearman_abs")], per[(meth, "spearman_signed")]
            floor = n[meth]["spearman_abs"]["floor"]
            c["final_abs"], c["first_abs"] = absolute[-1].as_dict(), absolute[1].as_dict()
            c["first_signed"] = signed[1].as_dict()
            # with every layer random, still more alike than maps of two different images (Q5.2's floor)?
            c["final_above_floor"] = bool(absolute[-1].lo > floor["hi"])
            c["final_at_floor"] = bool(absolute[-1].hi <= floor["hi"])
            c["sensitive_first"] = bool(absolute[1].hi < SENSITIVE)
            c["signed_sensitive_first"] = bool(signed[1].hi < SENSITIVE)
    res.figure("q5_cascade", plots.cascade_curves(curves, steps_labels),
               f"Cascading model parameter randomization of the main model ({len(x)} report images, "
               f"IG {a['ig_steps']} steps): similarity of each method's maps to its maps of the trained "
               "model as layers are re-initialised from the logits down (top-down) and from the input up "
               "(bottom-up); x: the layer randomized last. Bands: 95% bootstrap intervals over images.")


SECTION = Section(
    name="q5", title="Q5 Sanity checks", run=run,
    sources=tuple(lib("similarity", "gradcam", "ig", "model", "scores", "sanity", "randomization", "plots",
                      "baselines") +
                  measures.SOURCES + [Path(__file__), Path(samples.__file__),
                                      Path(models.__file__), Path(__file__).parent / "q3_ig.py"]),
    config=("data.", "attribution.", "random_labels.", "sanity."), models=("main", "random", "control"),
    after=("q3", "q4"),
    subs=(
        Sub("Q5.1", "Models trained on permuted labels, and matched controls", "q5_1.md",
            tables=("q5_models",)),
        Sub("Q5.2", "Comparing the maps with numbers", "q5_2.md", tables=("q5_metrics",),
            figures=("q5_bars",)),
        Sub("Q5.3", "Maps side by side and the verdict", "q5_3.md", figures=("q5_grid",)),
        Sub("Q5.4", "Cascading model parameter randomization", "q5_4.md", figures=("q5_cascade",)),
    ))

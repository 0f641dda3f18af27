"""Q5: sanity checks (Adebayo et al. 2018).

- Data randomization test, two designs, one rule. (1) Seeded subsets: k random-label models and
  k true-label controls, each pair (random-i, control-i) on its own seeded subset, same recipe
  and epochs. (2) The assignment's literal design: one random-label model on the whole training
  split, compared with two true-label controls of the whole split of its own recipe (same images,
  recipe and epochs, two seeds), so that its ceiling, like the subsets', pairs two models of one
  recipe. Per method and metric: rho = (cross - floor_arm) /
  (ceiling - floor_arm) with a Bayesian-bootstrap interval over images and models, where the
  floor is matched in arm (the cross's own pairs of models, two images of the same class and
  target), a validity gate (ceiling above the true-label models' matched floor by
  ``verdicts.gate_effect``) and a cut fixed in ``verdicts.randomization_cut``. Only the
  random-label models as intended on validation count (the others: a sensitivity analysis). One
  primary metric per method decides the headline; every other verdict is secondary and
  Holm-adjusted as a family.
- Cascading model parameter randomization of the main model, top-down and bottom-up, several
  random draws per step, with the main model's matched floor, a ceiling of the same recipe (main vs
  main-2 on the same images) and a draw-vs-draw reference.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import plots, randomization, sanity, similarity
from xaikit.data import CLASSES
from xaikit.forward import predict
from xaikit.pipeline import to_float

from . import explained, measures, models, samples, seeds, sources
from . import maps as store
from .context import Context, log
from .learned import as_intended, counted, random_auc_band, validation_auc
from .maps import baseline_images, cam_layers
from .section import Appendix, Result, Section, Sub

METRICS = similarity.MEASURES
METHODS = (("ig", "IG"), ("gradcam", "Grad-CAM"))
# Grad-CAM maps are non-negative: signed and absolute Spearman coincide, so it is counted once
METHOD_METRICS = {"ig": METRICS, "gradcam": tuple(m for m in METRICS if m != "spearman_signed")}
DESIGNS = (("subset", "seeded subsets"), ("whole", "whole split"))
CASCADE_METRICS = ("spearman_abs", "spearman_signed", "ssim")
# The "as intended" check of Q5.1 (report/learned.py: as_intended, shared with Q3.2 and Q4.2) reads
# verdicts.random_auc_band (a random-label model's validation AUC lies within learned.CHANCE_AUC +- this) and
# verdicts.control_fit (a control's training accuracy); numbers.json q5.random_auc_band, q5.control_fit; printed in
# q5_1.md beside the verdict.
CUTS = np.round(np.linspace(0.0, 1.0, 101), 2)   # the cut sweep of the verdict figure


def q5_positions(y: np.ndarray, per_class: int) -> np.ndarray:
    """Positions (in Q3's sample) of the first ``per_class`` images of each class; the report
    images come first in each class, so they are included."""
    return np.concatenate([np.flatnonzero(y == k)[:per_class] for k in (0, 1)])


def _maps(ctx: Context, name: str, model, x, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IG, Grad-CAM, IG completeness gaps) of model ``name``: fixed step count and baseline for every model."""
    ig = store.get(ctx, name, "ig", ctx.cfg["attribution.ig_baseline"], x, target, adaptive=False)
    layer = cam_layers(ctx, model).layer   # per model: auto names
    cam = store.get(ctx, name, "gradcam", layer, x, target).maps if layer else None
    return similarity.to_2d(ig.attributions), cam, ig.gap


def _label(iv: dict) -> str:
    return f"{iv['mean']:.3f} [{iv['lo']:.3f}, {iv['hi']:.3f}]"


def design_models(ctx: Context) -> dict[str, dict[str, list[str]]]:
    """The true-label and random-label models of each design of the data randomization test."""
    out = {"subset": {"true": list(models.subset_arm(ctx, "control")),
                      "random": list(models.subset_arm(ctx, "random"))}}
    if ctx.cfg["random_labels.whole_split"]:
        out["whole"] = {"true": [models.arm("control", models.WHOLE), models.arm("control", models.WHOLE_2)],
                        "random": [models.arm("random", models.WHOLE)]}
    return out


def verdicts(maps: dict, designs: dict, y, target, *, cut: float, alpha: float, n_boot: int,
             seed: int, effect: float, counted=None, methods=METHODS, metrics=None) -> dict:
    """Every (method, metric, design) result of the data randomization test: rho's floor matched in
    arm, the validity gate at ``effect``. Only the random-label models in ``counted`` (default: all)
    enter the cross and its floor; the others keep their place, with no comparison. ``metrics``: only these
    (default: every metric of the method)."""
    out = {}
    for design, group in designs.items():
        c, r = len(group["true"]), len(group["random"])
        partners = sanity.matched_partners(y, target, c, seed=seed)
        partners_arm = sanity.matched_partners(y, target, c, seed=seed + 1, n_other=r)
        left_out = [j for j, m in enumerate(group["random"]) if counted is not None and m not in counted]
        for meth, _ in methods:
            mm = maps[meth]
            for metric in (m for m in METHOD_METRICS[meth] if metrics is None or m in metrics):
                cross, ceiling, floor, floor_arm = sanity.arm_similarities(
                    [mm[m] for m in group["true"]], [mm[m] for m in group["random"]],
                    lambda a, b: similarity.measure_stack(a, b, metric), partners,   # noqa: B023
                    exclude_same_index=design == "subset", partners_arm=partners_arm)
                cross[:, left_out] = floor_arm[:, left_out] = np.nan
                res = sanity.randomization_test(cross, ceiling, floor, floor_arm=floor_arm, effect=effect, cut=cut,
                                                alpha=alpha, n_boot=n_boot, seed=seed,
                                                resample_models=design == "subset")
                with warnings.catch_warnings():      # an image whose maps are all flat: NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    per_image = {k: np.nanmean(v, axis=(0, 1)) for k, v in
                                 (("cross", cross), ("ceiling", ceiling), ("floor", floor), ("floor_arm", floor_arm))}
                out[(meth, metric, design)] = (res, per_image)
    return out


def run(ctx: Context) -> Result:
    """Q5: every model's maps from the store, the data randomization test (Q5.1-Q5.3), the cascade (Q5.4)."""
    main_model, _ = ctx.model("main")
    sc = ctx.cfg.section("sanity")
    designs = design_models(ctx)
    e = explained.main(ctx)
    pos = q5_positions(e.y, sc["images_per_class"])
    x, y, target, names = e.x[pos], e.y[pos], e.target[pos], e.names[pos]
    b = baseline_images(ctx.cfg["attribution.ig_baseline"], x, ctx)
    cam = cam_layers(ctx, main_model)
    meths = METHODS if cam.layer else METHODS[:1]          # no conv layer: Grad-CAM is skipped, IG runs
    maps, gaps, cards = _model_maps(ctx, designs, meths, x, target)
    ctx.save_arrays("q5_maps", names=names, targets=target, labels=y,
                    **{f"{meth}_{name}".replace("-", "_"): v for meth in maps for name, v in maps[meth].items()})
    res = Result()
    n = res.numbers
    _frame_numbers(ctx, n, designs, cards, maps, gaps, len(x), cam.reason, meths)
    results, every_model, adjusted = _data_randomization(ctx, n, maps, designs, y, target, names, meths)
    rows, sweep, bars = _design_results(ctx, n, maps, designs, x, results, every_model, adjusted, meths)
    if "gradcam" in maps:
        _own_target(ctx, n, maps, designs, x, y, target)
    _input_likeness(n, maps, x, b, designs, _boot(ctx))
    _sentences(n, meths)
    _models_table(ctx, res, n)
    _verdict_outputs(ctx, res, rows, sweep, bars, len(x))
    rp = _grid(ctx, res, n, maps, designs, pos, x, y, names, meths)
    cas = np.concatenate([rp[y[rp] == c][: sc["cascade_images_per_class"]] for c in (0, 1)])
    floors, ceilings = _cascade_references(ctx, maps, x, y, target, meths)
    _templates(ctx, n, maps, y, target, meths)
    orig = tuple(maps[meth]["main"][cas] for meth, _ in meths)   # the trained model's maps
    _cascade(ctx, main_model, x[cas], target[cas], b[:, cas] if b.ndim == 5 else b[cas], orig, floors,
             ceilings, res, names[cas], meths)
    return res


def _boot(ctx: Context) -> dict:
    """The Bayesian-bootstrap settings of every interval of Q5.2-Q5.4."""
    sc = ctx.cfg.section("sanity")
    return dict(n_boot=sc["bootstrap"], seed=sc["seed"], alpha=ctx.cfg["verdicts.alpha"])


def _model_maps(ctx: Context, designs: dict, meths, x, target) -> tuple[dict, dict, dict]:
    """Q5.1-Q5.3's maps from the store: method -> model -> maps, IG's gaps and the card of every model. Every
    model's IG is first started as a map job beside this process (report.maps.prefetch)."""
    maps, gaps, cards = {meth: {} for meth, _ in meths}, {}, {}
    every = list(dict.fromkeys(["main"] + [m for g in designs.values() for side in g.values() for m in side]))
    for name in every:
        store.prefetch(ctx, name, "ig", ctx.cfg["attribution.ig_baseline"], x, target, adaptive=False)
    for name in every:
        model, cards[name] = ctx.model(name)
        log(f"{' and '.join(t for _, t in meths)} of model {name} for {len(x)} images")
        ig_map, cam_map, gaps[name] = _maps(ctx, name, model, x, target)
        maps["ig"][name] = ig_map
        if "gradcam" in maps:
            maps["gradcam"][name] = cam_map
    return maps, gaps, cards


def _frame_numbers(ctx: Context, n: dict, designs: dict, cards: dict, maps: dict, gaps: dict, n_images: int,
                   skipped: str | None, meths) -> None:
    """Q5.1's numbers: the test's frame (seeds, images, cut, flat maps, IG gaps) and its models."""
    sc, vd = ctx.cfg.section("sanity"), ctx.cfg.section("verdicts")
    k, alpha = ctx.cfg["random_labels.seeds"], vd["alpha"]
    flat = {meth: {name: int(similarity.is_flat(m).sum()) for name, m in maps[meth].items()} for meth, _ in meths}
    n.update(n_seeds=k, n_images=n_images, images_per_class=sc["images_per_class"], n_boot=sc["bootstrap"],
             alpha=alpha, level=1 - alpha, cut=vd["randomization_cut"], primary=sc["primary_metric"], flat=flat,
             methods=[list(m) for m in meths], gradcam_skipped=skipped or None,
             whole=("whole" in designs), designs=[d for d, _ in DESIGNS if d in designs],
             ig_gaps={name: {"median": float(np.median(g)), "max": float(np.max(g))} for name, g in gaps.items()})
    n["models"] = _model_numbers(ctx, cards, designs)
    n["n_trainings"] = 2 * k     # the seeded subsets' random-label models and their controls
    n["n_subset_total"] = int(len(ctx.prepared().idx("train")))
    n["majority_test_accuracy"] = float(np.mean(ctx.prepared().y("test") == 1))
    n["random_auc_band"] = list(random_auc_band(ctx.cfg))
    n["control_fit"], n["gate_effect"] = ctx.cfg["verdicts.control_fit"], vd["gate_effect"]


def _data_randomization(ctx: Context, n: dict, maps: dict, designs: dict, y, target, names, meths
                        ) -> tuple[dict, dict, dict]:
    """Q5.2's verdicts: every result (counted models, then all), per-image similarities, Holm-adjusted p-values."""
    sc, vd = ctx.cfg.section("sanity"), ctx.cfg.section("verdicts")
    primary = sc["primary_metric"]
    kw = dict(cut=vd["randomization_cut"], alpha=vd["alpha"], n_boot=sc["bootstrap"], seed=sc["seed"],
              effect=vd["gate_effect"], methods=meths)
    found = verdicts(maps, designs, y, target, counted=set(n["models"]["counted"]), **kw)
    every_model = verdicts(maps, designs, y, target, **kw) if n["models"]["some_not_counted"] else found
    results = {key: r for key, (r, _) in found.items()}
    ctx.save_arrays("q5_similarity", names=names, **{         # per image, for the explorer
        f"{meth}_{primary}_{kind}": v for meth, _ in meths
        for kind, v in found[(meth, primary, "subset")][1].items()})
    secondary = [key for key in results if not (key[1] == primary and key[2] == "subset")]
    adjusted = dict(zip(secondary, sanity.holm([results[key].p_value for key in secondary])))
    n["n_secondary"] = len(secondary)
    return results, every_model, adjusted


def _own_target(ctx: Context, n: dict, maps: dict, designs: dict, x, y, target) -> None:
    """Q5.2's sensitivity analysis of item 2 (#32): each random-label model's Grad-CAM of *its own* decision (the class
    of its larger output, as its test metrics at 0.5 count it) instead of the main model's target; the primary verdict again, with
    those maps, per design; how often the decisions differ and how alike the two maps of one random-label model are."""
    sc, vd, boot = ctx.cfg.section("sanity"), ctx.cfg.section("verdicts"), _boot(ctx)
    primary = sc["primary_metric"]
    if primary not in METHOD_METRICS["gradcam"]:      # a signed metric: Grad-CAM has none (counted once as |.|)
        primary = "spearman_abs"
    own_maps, differ, alike = {m: dict(v) for m, v in maps.items()}, {}, []
    for name in dict.fromkeys(m for g in designs.values() for m in g["random"]):
        model = ctx.model(name)[0]
        own = np.argmax(predict(model, to_float(x)), axis=-1).astype(target.dtype)   # the class it gives
        layer = cam_layers(ctx, model).layer
        own_maps["gradcam"][name] = store.get(ctx, name, "gradcam", layer, x, own).maps
        d = own != target
        differ[name] = float(np.mean(d))
        if d.any():
            alike.append(similarity.measure_stack(maps["gradcam"][name][d], own_maps["gradcam"][name][d], primary))
    found = verdicts(own_maps, designs, y, target, counted=set(n["models"]["counted"]), cut=vd["randomization_cut"],
                     alpha=vd["alpha"], n_boot=sc["bootstrap"], seed=sc["seed"], effect=vd["gate_effect"],
                     methods=(("gradcam", "Grad-CAM"),), metrics=(primary,))
    out = {"metric": primary, "differ": differ, "differ_mean": float(np.mean(list(differ.values()))),
           "any_differ": bool(alike),
           "alike": sanity.bootstrap_mean(np.concatenate(alike), **boot).as_dict() if alike else None}
    # "alike" stays None without a differing decision: the template prints it only under any_differ
    for design in designs:
        r = found[("gradcam", primary, design)][0]
        out[design] = {"rho": r.rho.as_dict(), "outcome": r.outcome,
                       "same": r.outcome == n["gradcam"][primary][design]["outcome"]}
    out["same_everywhere"] = all(out[d]["same"] for d in designs)
    a = out["alike"]
    out["alike_says"] = measures.says("cannot_tell" if a is None else "opposite" if a["hi"] < 0 else
                                      "alike" if a["lo"] > 0 else "unrelated",
                                      ("opposite", "alike", "unrelated", "cannot_tell"))
    n["gradcam"]["own_target"] = out


def _design_results(ctx: Context, n: dict, maps: dict, designs: dict, x, results: dict, every_model: dict,
                    adjusted: dict, meths) -> tuple[list, list, dict]:
    """Q5.2's numbers per method, metric and design with the null references, and its table rows, sweep and bars."""
    sc = ctx.cfg.section("sanity")
    primary, boot = sc["primary_metric"], _boot(ctx)
    rng = np.random.default_rng(sc["seed"])
    nulls = {"edge": similarity.edge_map(x), "random_map": rng.uniform(size=x.shape[:3])}
    rows, sweep, bars = [], [], {}
    for meth, title in meths:
        n[meth] = {}
        for metric in METHOD_METRICS[meth]:
            n[meth][metric] = {}
            for design, dlabel in DESIGNS:
                if design not in designs:
                    continue
                r = results[(meth, metric, design)]
                is_primary = metric == primary and design == "subset"
                n[meth][metric][design] = out = _design_numbers(
                    r, every_model[(meth, metric, design)][0], None if is_primary else adjusted[(meth, metric, design)],
                    dlabel, {null: sanity.bootstrap_mean(np.stack([similarity.measure_stack(maps[meth][m], nmap, metric)
                                                                   for m in designs[design]["true"]]), **boot)
                             for null, nmap in nulls.items()})
                rows.append(_metrics_row(title, metric, dlabel, out, r.outcome, is_primary))
                sweep.append((f"{title} {metric}, {dlabel}{' (primary)' if is_primary else ''}",
                              r.rho.mean, r.rho.lo, r.rho.hi, r.outcome))
                if design == "subset":
                    bars[f"{title} {metric}"] = {
                        lab: tuple(out[key][q] for q in ("mean", "lo", "hi"))
                        for lab, key in (("control vs random", "cross"), ("control vs control (ceiling)", "ceiling"),
                                         ("floor in arm", "floor_arm"), ("true-label floor", "floor"),
                                         ("edge map", "edge"))}
        n[meth]["headline"] = _headline(n[meth], primary, designs)
    return rows, sweep, bars


def _metrics_row(title: str, metric: str, dlabel: str, out: dict, outcome: str, is_primary: bool) -> dict:
    """One row of Q5.2's metrics table (q5_metrics): one method, metric and design."""
    return {"method": title, "metric": metric + (" (primary)" if is_primary else ""),
            "design": dlabel, "cross": _label(out["cross"]), "ceiling": _label(out["ceiling"]),
            "floor (in arm)": _label(out["floor_arm"]), "floor (true-label)": _label(out["floor"]),
            "rho": _label(out["rho"]),
            "edge map": _label(out["edge"]), "random map": _label(out["random_map"]),
            "outcome": outcome, "Holm": "-" if is_primary else out["holm_outcome"]}


def _models_table(ctx: Context, res: Result, n: dict) -> None:
    """Q5.1's table (q5_models): the models of the data randomization test and the main model."""
    res.table("q5_models", _model_table(n["models"], n["flat"], n["ig_gaps"]),
              f"The models of the data randomization test ({ctx.cfg['random_labels.seeds']} seeded-subset seeds per arm"
              + (", the whole-split pair" if n["whole"] else "") + ") and the main model. "
              "Train accuracy is on the labels each model was trained on (permuted for the random-label "
              "models), at threshold 0.5, without dropout or augmentation; test metrics use the true labels. "
              "Flat maps are excluded from every similarity.")


def _verdict_outputs(ctx: Context, res: Result, rows: list, sweep: list, bars: dict, n_images: int) -> None:
    """Q5.2's metrics table (q5_metrics) and its figures: the cut sweep (q5_sweep) and the bars (q5_bars)."""
    sc, vd = ctx.cfg.section("sanity"), ctx.cfg.section("verdicts")
    cut, alpha = vd["randomization_cut"], vd["alpha"]
    res.table("q5_metrics", pd.DataFrame(rows),
              f"The data randomization test per method, metric and design: similarity means with "
              f"{1 - alpha:.0%} intervals from a Bayesian bootstrap over {n_images} test images"
              " and the models of each arm (whole split: over images only), {sc['bootstrap']} resamples. "
              "cross: a true-label model vs a random-label model on the same image; ceiling: two true-label models; "
              "floor (in arm): the cross's pairs of models on two images of the same class and explained target; "
              "floor (true-label): two true-label models on two such images; "
              f"rho = (cross - floor in arm) / (ceiling - floor in arm); outcome at the cut {cut} (uninformative "
              f"when the lower end of ceiling - true-label floor is below {vd['gate_effect']}); only the random-label "
              "models as intended on validation count; Holm: the secondary verdicts after Holm's adjustment; "
              "edge map and random map: null references (the input's Sobel edges, a uniform random map) compared "
              "with the true-label models' maps.".replace("{sc['bootstrap']}", str(sc["bootstrap"])))
    res.figure("q5_sweep", plots.cut_sweep(sweep, cut=cut),
               f"The verdict of every method, metric and design at every cut on rho in [0, 1]: red where it "
               f"fails, grey where it is inconclusive, green where it passes; the tick is rho's estimate and the "
               f"dashed line the cut fixed in advance ({cut}).")
    res.figure("q5_bars", plots.interval_bars(bars, ylabel=f"similarity ({1 - alpha:.0%} interval)"),
               "Seeded-subset design: similarity of the controls' maps to the random-label models' maps (cross), "
               "to the other controls' maps (the ceiling), to the random-label models' maps of other images of the "
               "same class and target (the floor in arm, rho's zero), to the other controls' maps of such images "
               "(the true-label floor of the validity gate) and to the input's edge map.")


def _grid(ctx: Context, res: Result, n: dict, maps: dict, designs: dict, pos, x, y, names, meths) -> np.ndarray:
    """Q5.3's figure (q5_grid): report images' maps under the main and random-label models; their positions."""
    s = samples.choose(ctx)
    rp = np.array([int(np.flatnonzero(pos == i)[0]) for i in s.report_pos if i in pos])
    show = ["main"] + ([models.arm("random", models.WHOLE)] if n["whole"] else []) + [designs["subset"]["random"][0]]
    shown = measures.grid_images(rp, y, measures.GRID_PER_CLASS)
    grid = [[plots.Panel(x[i], "gray") for i in shown]] + \
        [[plots.Panel(maps[meth][tag][i], "heat", clip=99) if meth == "ig" else
          plots.Panel(maps[meth][tag][i], "overlay", under=x[i], clip=100) for i in shown]
         for meth, _ in meths for tag in show]      # Grad-CAM is coarse: drawn over the X-ray, as in Q4.1
    res.figure("q5_grid", plots.panel_grid(
        grid, row_titles=["image"] + [f"{t}, {m}" for t in ("|IG|", "Grad-CAM")[:len(meths)] for m in show],
        col_titles=[f"{Path(str(names[i])).name} ({CLASSES[y[i]]})" for i in shown]),
        f"Maps of {len(shown)} report images (the first {measures.GRID_PER_CLASS} of each class; columns) under "
        "the main model and random-label models (rows). Colour bars: |IG| to its 99th percentile (p99), "
        "Grad-CAM to its maximum, drawn over the X-ray.")
    n["n_report"] = int(len(rp))
    n["n_grid"] = int(len(shown))
    n["grid_models"] = show
    n["grid_models_text"] = ", ".join(show)
    return rp


def _cascade_references(ctx: Context, maps: dict, x, y, target, meths) -> tuple[dict, dict]:
    """Q5.4's references per method: the main model's matched floor and its ceiling, a second seed of the
    main recipe (main-2) on the same images and targets (an unchanged map, 1, without a second seed)."""
    boot = _boot(ctx)
    floors = {meth: sanity.bootstrap_mean(_other_image(maps[meth]["main"], y, target, ctx), **boot) for meth, _ in meths}
    ceilings = {meth: sanity.Interval(1.0, 1.0, 1.0) for meth, _ in meths}
    if models.replicates(ctx) > 1:      # the same recipe, another seed: same image, same target
        second = models.arm("main", 2)
        ig_map, cam_map, _ = _maps(ctx, second, ctx.model(second)[0], x, target)
        for meth, m in (("ig", ig_map), ("gradcam", cam_map))[:len(meths)]:
            ceilings[meth] = sanity.bootstrap_mean(similarity.measure_stack(maps[meth]["main"], m, "spearman_abs"),
                                                   **boot)
    return floors, ceilings


def _other_image(m: np.ndarray, y, target, ctx: Context) -> np.ndarray:
    """Per image with a partner, Spearman |map| between a model's maps ``m`` of it and of a matched image (same class
    and target; Q5.4's seeded partner): the matched floor, and what a class template shares."""
    partners = sanity.matched_partners(y, target, 2, seed=ctx.cfg["sanity.seed"])[0, 1]
    has = partners >= 0
    return similarity.measure_stack(m[has], m[partners[has]], "spearman_abs")


def _templates(ctx: Context, n: dict, maps: dict, y, target, meths) -> None:
    """Q5.4's class template against a model that learned nothing (#32, item 3): per method, the main model's maps
    of two matched images (its matched floor) beside the same for the counted random-label models of the seeded
    subsets, main - them over images and models, and :func:`xaikit.sanity.template_verdict` at
    ``verdicts.consistency_high`` (the cut of a "high" within-class similarity in Q3.3 / Q4.3)."""
    boot, cut = _boot(ctx), ctx.cfg["verdicts.consistency_high"]
    names = counted(ctx)
    n["template"] = {"cut": cut, "models_text": seeds.names_text(names), "n_models": len(names), "any": bool(names)}
    none = sanity.Interval(float("nan"), float("nan"), float("nan"))
    for meth, _ in meths:
        main = _other_image(maps[meth]["main"], y, target, ctx)
        ref = np.stack([_other_image(maps[meth][m], y, target, ctx) for m in names]) if names else None
        mi = sanity.bootstrap_mean(main, **boot)
        li = sanity.bootstrap_mean(ref, **boot) if names else none
        di = sanity.bootstrap_mean(main[None] - ref, **boot) if names else none
        word = sanity.template_verdict(mi, li, di, cut)
        n["template"][meth] = {"main": mi.as_dict(), "learned": li.as_dict(), "difference": di.as_dict(), "word": word,
                               "says": measures.says(word, sanity.TEMPLATE_WORDS),
                               "straddles": bool(mi.lo < cut <= mi.hi)}


def _design_numbers(r, every, holm_p: float | None, label: str, nulls: dict) -> dict:
    """One (method, metric, design) result as numbers: the primary analysis ``r`` (``holm_p`` None for
    the primary verdict), the sensitivity analysis ``every`` (every random-label model counted) and the
    null references."""
    out = r.as_dict()
    out.update(primary=holm_p is None, holm_p=None if holm_p is None else float(holm_p),
               holm_outcome=r.outcome if holm_p is None else sanity.adjusted_outcome(r, holm_p),
               outcome_says=measures.says(r.outcome, sanity.OUTCOMES), design_text=label,
               all_models={"rho": every.rho.as_dict(), "outcome": every.outcome, "same": every.outcome == r.outcome})
    out.update({null: v.as_dict() for null, v in nulls.items()})
    return out


def _headline(m: dict, primary: str, designs: dict) -> dict:
    """A method's headline: the primary metric's outcome in the seeded-subset design, the same
    metric in the whole-split design beside it, and whether the two agree."""
    sub = m[primary]["subset"]["outcome"]
    whole = m[primary]["whole"]["outcome"] if "whole" in designs else None
    return {"outcome": sub, "whole": whole, "agree": whole is None or whole == sub,
            "verb": {"pass": "passes", "fail": "fails", "inconclusive": "is inconclusive in",
                     "uninformative": "cannot be judged by"}[sub]}


def _input_likeness(n: dict, maps: dict, x, b, designs: dict, boot: dict) -> None:
    """IG "looks like the input": Spearman between |IG| and |x - baseline| per arm; the
    (x - baseline) factor imprints the image on any model's map."""
    input_term = np.abs(similarity.to_2d(x - (b.mean(0) if b.ndim == 5 else b)))
    groups = {"main": ["main"], "random": designs["subset"]["random"], "control": designs["subset"]["true"]}
    n["input_likeness"] = {kind: sanity.bootstrap_mean(np.stack([
        similarity.pairwise(np.abs(maps["ig"][name]), input_term, similarity.spearman)
        for name in names_]), **boot).as_dict() for kind, names_ in groups.items()}


def _sentences(n: dict, meths) -> None:
    """What Q5.2 and Q5.3 choose between, as values: every (method, metric, design) result in the
    order the appendix lists them, whether |IG| resembles the input more under one arm, and what the
    sign of IG adds to the verdict on |IG|."""
    n["result_lines"] = [{"method": title, "metric": metric, **n[meth][metric][design]}     # metrics by name
                         for meth, title in meths for metric in sorted(METHOD_METRICS[meth])
                         for design, _ in DESIGNS if design in n[meth][metric]]
    il = n["input_likeness"]
    il["random_more"] = bool(il["random"]["lo"] > il["control"]["hi"])
    il["control_more"] = bool(il["control"]["lo"] > il["random"]["hi"])
    sig, ab = n["ig"]["spearman_signed"]["subset"], n["ig"]["spearman_abs"]["subset"]
    adds = sig["holm_outcome"] == "pass" and ab["outcome"] != "pass"     # the sign passes, |IG| does not
    n["sign_says"] = measures.says("adds" if adds else "same" if sig["holm_outcome"] == ab["outcome"] else "other",
                                   ("adds", "same", "other"))
    n["gradcam_is_skipped"] = bool(n["gradcam_skipped"])


def _model_row(ctx: Context, name: str, card: dict, kind: str) -> dict:
    auc, acc = card["test"]["at_0.5"]["auc"], card["test"]["at_0.5"]["accuracy"]
    val_auc = validation_auc(ctx, name)
    ok = as_intended(kind, card["train_accuracy"], val_auc, ctx.cfg)
    return {"name": name, "seed": card.get("seed"), "epochs": card["epochs_run"], "seconds": card["seconds"],
            "train_accuracy": card["train_accuracy"], "n_train": card["n_train"], "test_accuracy": acc,
            "test_auc": auc, "val_auc": val_auc, "changed_labels": card.get("changed_labels"),
            "stopped": card.get("stopped"), "ok": bool(ok)}


def _summary(rows: list[dict]) -> dict:
    return {"rows": rows, "all_ok": all(x["ok"] for x in rows), "n_ok": sum(x["ok"] for x in rows),
            "n_not_ok": sum(not x["ok"] for x in rows), "n": len(rows), "epochs": [x["epochs"] for x in rows],
            "seconds_mean": float(np.mean([x["seconds"] for x in rows])),
            "test_auc_min": float(min(x["test_auc"] for x in rows)),
            "test_auc_max": float(max(x["test_auc"] for x in rows)),
            "val_auc_min": float(min(x["val_auc"] for x in rows)),
            "val_auc_max": float(max(x["val_auc"] for x in rows)),
            "train_accuracy_min": float(min(x["train_accuracy"] for x in rows)),
            "train_accuracy_max": float(max(x["train_accuracy"] for x in rows))}


def _model_numbers(ctx: Context, cards: dict, designs: dict) -> dict:
    r = ctx.cfg.section("random_labels")
    sub = designs["subset"]
    out = {"random": _summary([_model_row(ctx, m, cards[m], "random") for m in sub["random"]]),
           "control": _summary([_model_row(ctx, m, cards[m], "control") for m in sub["true"]])}
    out["random"]["changed_labels_mean"] = float(np.mean([x["changed_labels"] for x in out["random"]["rows"]]))
    # Q5.1's answer names what weakens the test: models that did not memorise, and models that memorised
    # but do not score at chance on the true labels (``ok`` is both at once, see as_intended)
    memorised = [x["train_accuracy"] >= r["target_accuracy"] for x in out["random"]["rows"]]
    out["random"]["n_not_memorised"] = int(sum(not m for m in memorised))
    out["random"]["n_off_chance"] = int(sum(m and not x["ok"] for m, x in zip(memorised, out["random"]["rows"])))
    out["n_train"] = out["random"]["rows"][0]["n_train"]
    out["target"] = r["target_accuracy"]
    out["max_epochs"] = r["max_epochs"]
    if "whole" in designs:
        rnd, (ctl, ctl2) = designs["whole"]["random"][0], designs["whole"]["true"]
        out["whole"] = {"random": _model_row(ctx, rnd, cards[rnd], "random"),
                        "control": _model_row(ctx, ctl, cards[ctl], "control"),
                        "control_2": _model_row(ctx, ctl2, cards[ctl2], "control")}
        w = out["whole"]["random"]
        w["memorised"] = bool(w["train_accuracy"] >= r["target_accuracy"])
        w["state_says"] = measures.says("not_memorised" if not w["memorised"] else "ok" if w["ok"] else "off_chance",
                                        ("not_memorised", "off_chance", "ok"))
    rnd = out["random"]
    rnd.update(any_not_memorised=rnd["n_not_memorised"] > 0, any_off_chance=rnd["n_off_chance"] > 0)
    rnd["any_weak"] = rnd["any_not_memorised"] or rnd["any_off_chance"]
    # Q5.1's answer: every random-label model as intended (the whole-split one too, when there is one)
    out["random_ok"] = bool(rnd["all_ok"] and ("whole" not in out or out["whole"]["random"]["ok"]))
    # the random-label models Q5.2's primary analysis counts: decided here, on validation, before any map is compared
    every = rnd["rows"] + ([out["whole"]["random"]] if "whole" in out else [])
    out["counted"] = [x["name"] for x in every if x["ok"]]
    out["not_counted"] = [x["name"] for x in every if not x["ok"]]
    out["counted_text"] = ", ".join(out["counted"]) or "none"
    out["not_counted_text"] = ", ".join(out["not_counted"])
    out["some_not_counted"] = bool(out["not_counted"])
    return out


def _model_table(m: dict, flat: dict, gaps: dict) -> pd.DataFrame:
    rows = []
    entries = [(r, "permuted") for r in m["random"]["rows"]] + [(r, "true") for r in m["control"]["rows"]]
    if "whole" in m:
        entries += [(m["whole"]["random"], "permuted"), (m["whole"]["control"], "true"),
                    (m["whole"]["control_2"], "true")]
    for r, labels in entries:
        rows.append({"model": r["name"], "labels": labels, "seed": r["seed"], "train images": r["n_train"],
                     "epochs": r["epochs"], "train accuracy": r["train_accuracy"],
                     "test accuracy": r["test_accuracy"], "test AUC": r["test_auc"], "validation AUC": r["val_auc"],
                     "flat IG / Grad-CAM": f"{flat['ig'][r['name']]} / {flat.get('gradcam', {}).get(r['name'], '-')}",
                     "IG gap median / max": f"{gaps[r['name']]['median']:.2%} / {gaps[r['name']]['max']:.2%}",
                     "as intended": "yes" if r["ok"] else "no"})
    rows.append({"model": "main (Q2)", "labels": "true", "seed": "-", "train images": "-", "epochs": "-",
                 "train accuracy": np.nan, "test accuracy": np.nan, "test AUC": np.nan, "validation AUC": np.nan,
                 "flat IG / Grad-CAM": f"{flat['ig']['main']} / {flat.get('gradcam', {}).get('main', '-')}",
                 "IG gap median / max": f"{gaps['main']['median']:.2%} / {gaps['main']['max']:.2%}",
                 "as intended": "-"})
    return pd.DataFrame(rows).fillna("-")


def _cascade_rho(sim: sanity.Interval, floor: sanity.Interval, ceiling: sanity.Interval) -> dict:
    """Where a cascade step's similarity to the trained maps lies between the matched floor (0)
    and the ceiling (1: a second true-label model's maps of the same images), with the interval
    of the similarity (floor and ceiling taken at their estimates)."""
    span = ceiling.mean - floor.mean
    if not ceiling.lo > floor.hi:       # the validity gate: references that cannot be told apart
        return {k: float("nan") for k in ("mean", "lo", "hi")}
    return {k: (getattr(sim, k) - floor.mean) / span for k in ("mean", "lo", "hi")}


def _sensitivity(rho: dict, cut: float) -> str:
    """A cascade step: "sensitive" when rho lies wholly below the cut (the map moved nearer to
    maps of unrelated images than to a second trained model's), "insensitive" when wholly above,
    "partly" between, "uninformative" when the ceiling is not above the floor."""
    if np.isnan(rho["mean"]):
        return "uninformative"
    return "sensitive" if rho["hi"] < cut else "insensitive" if rho["lo"] > cut else "partly"


SENSITIVITY_WORDS = ("sensitive", "insensitive", "partly", "uninformative")


def _cascade_maps(ctx: Context, model, x, target, b, draws: int) -> dict:
    """Per order: (the layer randomized at each step, step -> draw -> (IG, Grad-CAM) maps), every
    step of every order and draw computed on one copy of ``model`` (traced once)."""
    seed, baseline = ctx.cfg["sanity.seed"], ctx.cfg["attribution.ig_baseline"]
    work = randomization.copy_of(model)
    layer = cam_layers(ctx, work).layer
    cam = store.explainer(ctx, work, layer) if layer else None
    out = {}
    for order in randomization.ORDERS:
        per_draw, randomized = [], []          # draw -> step -> maps
        for d in range(draws):
            per_draw.append([])
            for step in randomization.cascade_in_place(model, order, seed=seed + 7919 * d, into=work):
                if cam is not None:
                    cam.set_weights(work.get_weights())
                ig = store.get(ctx, None, "ig", baseline, x, target, model=work, adaptive=False, b=b)
                per_draw[-1].append((similarity.to_2d(ig.attributions), cam(x, target) if cam else None))
                randomized.append(step.randomized[-1])
        out[order] = (randomized[:len(per_draw[0])],
                      [[run[step] for run in per_draw] for step in range(len(per_draw[0]))])
    return out


def _cascade(ctx: Context, model, x, target, b, orig: tuple, floors: dict, ceilings: dict,
             res: Result, names: np.ndarray, meths=METHODS) -> None:
    """Q5.4: cascading randomization of the main model's layers, both orders, ``cascade_draws``
    independent draws per step; ``orig`` holds the trained model's (IG, Grad-CAM) maps of ``x``,
    ``floors`` each method's matched floor (Spearman |map|, main model, two images) and
    ``ceilings`` its ceiling (main vs main-2, same image and target; 1 without a second seed)."""
    draws = ctx.cfg["sanity.cascade_draws"]
    log(f"cascading parameter randomization: {len(x)} images, both orders, {draws} draws per step")
    n = res.numbers
    n["cascade"] = {"n_images": int(len(x)), "layers": list(randomization.weighted_layers(model)),
                    "draws": draws, "floor": {meth: floors[meth].as_dict() for meth, _ in meths},
                    "ceiling": {meth: ceilings[meth].as_dict() for meth, _ in meths},
                    "ceiling_is_seed": models.replicates(ctx) > 1, "ceiling_model": models.arm("main", 2)}
    curves, labels, saved = {}, {}, {}
    cascades = _cascade_maps(ctx, model, x, target, b, draws)
    for order in randomization.ORDERS:
        randomized, stage_maps = cascades[order]
        labels[order] = ["none"] + randomized
        for j, (meth, title) in enumerate(meths):
            # the first draw's maps, N x steps x H x W, the trained model's first (for the explorer)
            saved[f"{meth}_{order}"] = np.stack([orig[j]] + [per_draw[0][j] for per_draw in stage_maps], axis=1)
            n["cascade"].setdefault(meth, {})[order] = c = _cascade_order(
                ctx, orig[j], [[d[j] for d in per_draw] for per_draw in stage_maps], randomized,
                floors[meth], ceilings[meth])
            curves[(title, order)] = _cascade_curves(c["steps"])
    _cascade_summary(n["cascade"], meths)
    ctx.save_arrays("q5_cascade", names=names, **saved,
                    **{f"{meth}_{order}_steps": np.array(["trained"] + labels[order][1:])
                       for meth, _ in meths for order in randomization.ORDERS})
    _cascade_figure(ctx, res, curves, labels, floors, ceilings, meths, len(x))


def _cascade_step(ctx: Context, orig: np.ndarray, cur: list, layer: str, floor, ceiling) -> dict:
    """Q5.4's numbers of one cascade step: similarity to the trained maps and draw vs draw, rho, sensitivity."""
    vd = ctx.cfg.section("verdicts")
    boot, draws = _boot(ctx), len(cur)
    row = {"layer": layer, "flat": int(sum(similarity.is_flat(m).sum() for m in cur))}
    for metric in CASCADE_METRICS:
        v = np.stack([similarity.measure_stack(orig, m, metric) for m in cur])
        row[metric] = sanity.bootstrap_mean(v, **boot).as_dict()
    pairs = np.stack([similarity.measure_stack(cur[d], cur[e], "spearman_abs")
                      for d in range(draws) for e in range(d + 1, draws)])
    row["draw_vs_draw"] = sanity.bootstrap_mean(pairs, **boot).as_dict()
    row["rho"] = _cascade_rho(sanity.Interval(**row["spearman_abs"]), floor, ceiling)
    row["sensitivity"] = _sensitivity(row["rho"], vd["randomization_cut"])
    return row


def _cascade_order(ctx: Context, orig: np.ndarray, stage_maps: list, randomized: list, floor, ceiling) -> dict:
    """Q5.4's numbers of one method and order: every step (step -> draw -> maps), the first and the last."""
    c = {"steps": [_cascade_step(ctx, orig, cur, layer, floor, ceiling)
                   for cur, layer in zip(stage_maps, randomized)]}
    first, final = c["steps"][0], c["steps"][-1]
    c.update(first=first, final=final, first_sensitivity=first["sensitivity"],
             final_above_floor=bool(final["spearman_abs"]["lo"] > floor.hi),
             final_draws_above_floor=bool(final["draw_vs_draw"]["lo"] > floor.hi),
             first_says=measures.says(first["sensitivity"], SENSITIVITY_WORDS),
             flat_total=int(sum(r["flat"] for r in c["steps"])),
             n_maps=int(len(c["steps"]) * ctx.cfg["sanity.cascade_draws"] * len(orig)))
    return c


def _cascade_curves(steps: list[dict]) -> dict:
    """Q5.4's figure bands of one method and order (step 0: the trained model itself)."""
    band = lambda key: [(r[key]["mean"], r[key]["lo"], r[key]["hi"]) for r in steps]  # noqa: E731
    return {"vs trained model": np.array([(1.0, 1.0, 1.0)] + band("spearman_abs")),
            "draw vs draw": np.array([(np.nan,) * 3] + band("draw_vs_draw"))}


def _cascade_summary(cas: dict, meths) -> None:
    """Q5.4's values over both orders: IG's input term, any flat map, the layers, a first step uninformative."""
    for meth, _ in meths:
        cas[meth]["input_term"] = meth == "ig"     # IG's maps keep the (x - baseline) term at any weights
        cas[meth]["any_flat"] = sum(cas[meth][order]["flat_total"] for order in randomization.ORDERS) > 0
    cas.update(n_layers=len(cas["layers"]), layers_text=", ".join(cas["layers"]),
               first_uninformative=any(cas[meth]["top_down"]["first_says"]["uninformative"] for meth, _ in meths))


def _cascade_figure(ctx: Context, res: Result, curves: dict, labels: dict, floors: dict, ceilings: dict, meths,
                    n_images: int) -> None:
    """Q5.4's figure (q5_cascade): similarity to the trained maps and draw vs draw, per step, both orders."""
    a, vd, draws = ctx.cfg.section("attribution"), ctx.cfg.section("verdicts"), ctx.cfg["sanity.cascade_draws"]
    res.figure("q5_cascade", plots.cascade_bands(
                   curves, labels, {t: (floors[m].mean, floors[m].lo, floors[m].hi) for m, t in meths},
                   {t: (ceilings[m].mean, ceilings[m].lo, ceilings[m].hi) for m, t in meths}),
               f"Cascading model parameter randomization of the main model ({n_images} report images, "
               f"IG {a['ig_steps']} steps, {draws} random draws per step): Spearman |map| of each step's maps to "
               "the trained model's maps and between two independent draws of the same step, as layers are "
               "re-initialised from the logits down (top-down) and from the input up (bottom-up); x: the layer "
               f"randomized last. Bands: {1 - vd['alpha']:.0%} Bayesian-bootstrap intervals over draws and images; "
               "grey: the main model's matched floor (its maps of two images of the same class and target); "
               + ("blue: the ceiling (the main model vs main-2, a second seed of its recipe, on the same images and "
                  "targets)." if models.replicates(ctx) > 1 else "the ceiling is an unchanged map (1): one seed of the "
                  "main recipe."))


SECTION = Section(
    name="q5", title="Q5 Sanity checks", run=run,
    sources=sources.of(__file__, measures.HAND_MASKS),
    config=("data.", "attribution.", "random_labels.", "sanity.", "verdicts."),
    models=("main", "second", "random", "control"),
    subs=(
        Sub("Q5.1", "Models trained on permuted labels, and matched controls", "q5_1.md",
            tables=(Appendix("q5_models"),)),
        Sub("Q5.2", "Do the maps pass or fail? The numbers and the rule", "q5_2.md", tables=(Appendix("q5_metrics"),),
            figures=(Appendix("q5_sweep"), "q5_bars")),
        Sub("Q5.3", "Maps side by side and the verdict", "q5_3.md", figures=("q5_grid",)),
        Sub("Q5.4", "Cascading model parameter randomization", "q5_4.md", figures=(Appendix("q5_cascade"),)),
    ))

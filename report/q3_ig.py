"""Q3: Integrated Gradients on the main model."""

from __future__ import annotations

from pathlib import Path
import numpy as np
import pandas as pd

from xaikit import baselines as xb
from xaikit import intervals, plots, similarity
from xaikit.data import CLASSES
from xaikit.train import predict_probs

from . import explained, learned, measures, samples, seeds, sources
from . import maps as store
from .context import Context, log
from .explained import Explained
from .section import Appendix, Result, Section, Sub


def run(ctx: Context) -> Result:
    model, _ = ctx.model("main")
    st = measures.settings(ctx)
    s = samples.choose(ctx)
    e = explained.main(ctx)
    _prefetch(ctx, e)
    _save_main(ctx, e)
    res = Result()
    n = res.numbers
    rp = s.report_pos
    n["rule"] = samples.rule(ctx)
    _gap_numbers(ctx, e, rp, n)
    _map_figures(ctx, e, rp, res)
    nothing = _region_numbers(ctx, e, rp, st, res)
    base_maps = _baselines(ctx, model, e.x, e.target, rp, res, st, labels=e.y,
                           image_names=e.names)
    res.table("q3_regions", measures.region_table(n["regions"], "|IG|"),
              f"Share of |IG| in the lung mask and the border zone against their area share (ratio; "
              f"{st['level']:.0%} bootstrap intervals over images), beside the same ratios for a model that learned "
              "nothing (per image the mean unit-mass |IG| of the random-label models counted in Q5.1, same images and "
              "targets; when any counts), the spatial prior (the mean |IG| of the other images of the class), the input "
              "alone (|x - baseline|) and a random map.")
    _seeds(ctx, e.x, e.y, e.names, e.masks, e.nulls["input"], e.nulls["random"], e.ig.attributions, e.target,
           base_maps, st, res, nothing)
    return res


def _prefetch(ctx: Context, e: Explained) -> None:
    """Q3's map sets of other models and baselines as map jobs beside this process (report.maps.prefetch), in the
    order they are asked for: the learned-nothing reference, the main model's baselines, each seed's IG."""
    learned.prefetch(ctx, "ig", e.x, e.target)
    for b in xb.BASELINES:
        store.prefetch(ctx, "main", "ig", b, e.x, e.target, adaptive=False)
    xs = e.x[seeds.positions(ctx, e.y)]
    for name, model, card in seeds.replicates(ctx)[1:]:
        target = explained.seed_target(model, card, xs)
        store.prefetch(ctx, name, "ig", ctx.cfg["attribution.ig_baseline"], xs, target)
        for b in xb.BASELINES:
            store.prefetch(ctx, name, "ig", b, xs, target, adaptive=False)


def _save_main(ctx: Context, e: Explained) -> None:
    """The main model's explained sample, for the explorer (``ig_main``)."""
    ig = e.ig
    ctx.save_arrays("ig_main", names=e.names, inputs=e.x, labels=e.y, targets=e.target, probs=e.probs,
                    attributions=ig.attributions, gaps=ig.gap, f_image=ig.f_image,
                    f_baseline=ig.f_baseline, baseline=np.array(ig.setting), masks=e.masks,
                    input_alone=e.nulls["input"], threshold=np.array(e.threshold),
                    negative_delta=(ig.f_image - ig.f_baseline) < 0,
                    **measures.per_image_shares(ig.attributions, e.masks, ctx.cfg["verdicts.border_frac"]))


def _gap_numbers(ctx: Context, e: Explained, rp: np.ndarray, n: dict) -> None:
    """Q3.1's numbers: the settings, the report images and the completeness gaps."""
    a = ctx.cfg.section("attribution")
    ig, thr = e.ig, e.threshold
    n["baseline"] = a["ig_baseline"]
    n["steps"] = a["ig_steps"]
    n["max_steps"] = ig.steps
    n["tolerance"] = a["ig_tolerance"]
    n["threshold"] = thr
    n["target_rule"] = (f"the decision at the operating threshold of Q2 (PNEUMONIA when P(PNEUMONIA) >= "
                        f"{thr:.3f})")
    n["report_images"] = [{"name": str(nm), "label": CLASSES[yy], "p_pneumonia": float(pp),
                           "misclassified": bool((pp >= thr) != (yy == 1)), "gap": float(g)}
                          for nm, yy, pp, g in zip(e.names[rp], e.y[rp], e.probs[rp], ig.gap[rp])]
    n["n_report"] = int(len(rp))
    n["heat_clip"] = 99
    n["report_misclassified"] = int(sum(r["misclassified"] for r in n["report_images"]))
    n["gap_report_max"] = float(ig.gap[rp].max())
    n["gap_median"] = float(np.median(ig.gap))
    n["gap_over_tol"] = int(np.sum(ig.gap > a["ig_tolerance"]))
    n["any_gap_over_tol"] = n["gap_over_tol"] > 0
    n["baseline_is_blurred"] = a["ig_baseline"] == "blurred"
    n["n_eval"] = int(len(e.x))
    delta = np.abs(ig.f_image - ig.f_baseline)
    over = ig.gap > a["ig_tolerance"]
    n["delta_median"] = float(np.median(delta))
    n["delta_median_over_tol"] = float(np.median(delta[over])) if over.any() else 0.0


def _map_figures(ctx: Context, e: Explained, rp: np.ndarray, res: Result) -> None:
    """Q3.1's figures: image, |IG|, signed IG and overlay of every report image, one figure per class."""
    baseline = ctx.cfg["attribution.ig_baseline"]
    x, ig = e.x, e.ig
    negative = (ig.f_image - ig.f_baseline) < 0
    caps = measures.caption_rows(e.names[rp], e.y[rp], e.probs[rp], e.target[rp], e.threshold)
    for k, c in enumerate(CLASSES):
        rows, titles = [], []
        for j in np.flatnonzero(e.y[rp] == k):
            i = rp[j]
            titles.append(caps[j] + f", gap {ig.gap[i]:.2%}" + (", F(x)<F(b)" if negative[i] else ""))
            rows.append([plots.Panel(x[i], "gray"),
                         plots.Panel(ig.attributions[i], "heat"),
                         plots.Panel(ig.attributions[i], "signed"),
                         plots.Panel(ig.attributions[i], "overlay", under=x[i])])
        res.figure(f"q3_maps_{c.lower()}", plots.panel_grid(
            rows, row_titles=titles, col_titles=("image", "|IG|", "signed IG (red +, blue -)", "overlay")),
            f"IG maps of the {len(rows)} {c} report images (explained score: logit margin of the decided "
            f"class; {baseline} baseline). Captions: file, true label, P(PNEUMONIA), target, "
            "completeness gap; F(x)<F(b) marks a baseline that scores higher than the image.")


def _region_numbers(ctx: Context, e: Explained, rp: np.ndarray, st: dict, res: Result) -> learned.Reference:
    """Q3.2 and Q3.3: masks, regions (against the learned-nothing reference too, which it returns), zones, the
    images whose baseline scores higher, consistency (its class specificity against the same models' own maps)."""
    n, x, y, masks, nulls, attr = res.numbers, e.x, e.y, e.masks, e.nulls, e.ig.attributions
    delta = e.ig.f_image - e.ig.f_baseline
    n["masks"] = measures.mask_numbers(masks, e.fallback, y)
    n["hand_masks"] = measures.hand_mask_dice(ctx, st)
    n["has_hand_masks"] = n["hand_masks"] is not None
    ref = learned.reference(ctx, "ig", x, e.target)     # decided on validation before any map is compared
    n["learned"] = learned.numbers(ref)
    with_ref = learned.with_reference(nulls, ref.maps)
    n["regions"] = measures.region_numbers(attr, masks, y, with_ref, st)
    n["negative_delta"] = measures.negative_delta_numbers(delta, e.target, attr, masks, y, with_ref, st,
                                                          n["regions"])
    n["zones"] = measures.zone_numbers(attr, masks[0], y, nulls, st)    # anatomy in words (Q3.2)
    res.figure("q3_zones", measures.zone_figure(x.mean(0), masks[0], st["border_frac"]),
               f"The named zones of Q3.2 and Q4.2 over the mean of the {len(x)} explained test images, with each "
               "zone's share of the image: the lung atlas split into the patient's right lung (the image's left on a "
               "frontal PA film) and left lung, then every other pixel by the side of the lungs it is nearest to; the "
               "border strip takes precedence.")
    res.table("q3_zones", measures.zone_table(n["zones"], "|IG|"),
              f"|IG| by zone: share of the mass and ratio share / area per true class ({st['level']:.0%} bootstrap "
              "intervals over images), the ratio of the input alone (|x - baseline|), and the difference of ratios "
              "between classes (two-sample interval).")
    res.figure("q3_masks", measures.mask_figure(x[rp], masks[rp], st["border_frac"]),
               "The lung mask (an atlas of hand-drawn training lung fields; green contour) over the report images, "
               "and the border zone.")
    n["consistency"] = c = measures.consistency_numbers(attr, nulls, st, labels=y, targets=e.target)
    c["without_negative"] = measures.consistency_without(attr, nulls, st, c, labels=y, targets=e.target,
                                                         drop=delta < 0)
    c["learned"] = measures.learned_specificity(attr, nulls["input"], learned.own_maps(ctx, ref, st["cells"]),
                                                e.target, st, c, none_reason=n["learned"]["reason"])
    res.figure("q3_mean", measures.mean_map_figure(attr, e.target, x, "|IG|"),
               f"Mean image and mean |IG| map per explained target (the decided class) over {len(x)} test images.")
    return ref


def baseline_spearman(maps: dict[str, np.ndarray], cells: int, kept=None) -> np.ndarray:
    """Per image: the mean Spearman of |IG| over all pairs of the baselines ``kept`` (default: all;
    ``maps``: name -> N x H x W), the maps average-pooled to ``cells`` x ``cells`` first (0: pixels)."""
    names = [b for b in maps if kept is None or b in kept]
    if len(names) < 2:
        raise ValueError(f"baseline_spearman expects at least 2 baselines, got {names}")
    at = {b: similarity.pool(maps[b], cells) if cells else maps[b] for b in names}
    pairs = [similarity.pairwise(at[a], at[b], similarity.spearman)
             for i, a in enumerate(names) for b in names[i + 1:]]
    return np.mean(pairs, axis=0)


def dependence_word(e: dict, cut: float) -> str:
    """How strongly IG depends on the baseline, from the interval of the mean Spearman between baselines;
    "cannot tell" without one (fewer than two baselines meet the completeness tolerance)."""
    if not np.isfinite(e["lo"]) or not np.isfinite(e["hi"]):
        return "cannot tell"
    return "strongly" if e["hi"] < cut else "only mildly" if e["lo"] >= cut else "moderately"


def seed_specs() -> dict:
    """Q3's verdicts checked over seeds, in the order Q3.5 lists them (see :class:`report.seeds.Spec`)."""
    return {**seeds.shared_specs("|IG|", "Q3"), "baseline_dependence": seeds.Spec(
        "the dependence on the baseline (Q3.4)",
        "mean Spearman of |IG| between baselines: \"strongly\" when its whole interval lies below {cut}, \"only "
        "mildly\" when it lies at or above, else \"moderately\"", lambda st: {"cut": st["baseline_sensitive"]},
        lambda r: r["baseline_spearman"], lambda n: n["baseline_spearman"])}


def _seed_row(name: str, card: dict, attr, target, labels, masks, nulls: dict, base: dict, st: dict,
              kept: list, own: tuple[dict, str]) -> dict:
    """One seed's headline numbers and verdict words (the rules of the main verdicts); ``own``: the counted
    random-label models' maps of the same images at this seed's targets, and why there are none."""
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    r = measures.region_numbers(attr, masks, labels, nulls, st)
    cw = seeds.consistency_words(attr, nulls["input"], st, labels=labels, targets=target, learned=own[0],
                                 none_reason=own[1])
    b = (intervals.mean_ci(baseline_spearman(base, st["cells"], kept), **ci).as_dict() if len(kept) > 1 else
         {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0})
    words = {**seeds.shared_words(r, cw.level, cw.specific, cw.learned_word),
             "baseline_dependence": dependence_word(b, st["baseline_sensitive"])}
    return {"model": name, "seed": int(card.get("seed", 1)), "threshold": float(card["val_threshold"]),
            "n": int(len(labels)), "lung_ratio": {k: r[k]["map"]["lung_ratio"] for k in CLASSES},
            "border_ratio": {k: r[k]["map"]["border_ratio"] for k in CLASSES},
            "vs_input": {k: r[k]["vs_input"] for k in CLASSES},
            "specificity_vs_input": cw.specificity, "specificity_vs_learned": cw.vs_learned, "within": cw.within,
            "baseline_spearman": b, "words": words}


def _seeds(ctx: Context, x, y, image_names, masks, input_alone, rand, main_attr, main_target, base_maps: dict,
           st: dict, res: Result, nothing: learned.Reference) -> None:
    """Q3's headline verdicts for every seed of the main recipe, on the same images (report.seeds), each seed's
    regions against the learned-nothing reference ``nothing`` of the same images at its own decisions."""
    pos = seeds.positions(ctx, y)
    xs, ys, ms = x[pos], y[pos], masks[pos]
    nulls = {"input": input_alone[pos], "random": rand[pos]}
    rows, saved = [], {}
    for name, model, card in seeds.replicates(ctx):
        if name == "main":     # the main model's maps of these images are already made
            attr, target, base = main_attr[pos], main_target[pos], {b: m[pos] for b, m in base_maps.items()}
        else:
            log(f"IG of seed {name} for {len(xs)} test images (main baseline and the {len(xb.BASELINES)} baselines)")
            attr, target = explained.seed_ig(ctx, name, model, card, xs)
            base = {b: np.abs(similarity.to_2d(store.get(ctx, name, "ig", b, xs, target, adaptive=False).maps))
                    for b in xb.BASELINES}
        saved[f"attr_{name}".replace("-", "_")], saved[f"target_{name}".replace("-", "_")] = attr, target
        with_ref = learned.with_reference(nulls, learned.on_subset(ctx, nothing, pos, xs, target))
        own = (learned.own_maps(ctx, nothing, st["cells"], pos, target), learned.numbers(nothing)["reason"])
        rows.append(_seed_row(name, card, attr, target, ys, ms, with_ref, base, st, res.numbers["baselines_kept"], own))
    ctx.save_arrays("ig_seeds", names=image_names[pos], positions=pos, **saved)   # names: the explorer's rows
    n = res.numbers
    ref = {**seeds.shared_reference(n), "baseline_dependence": n["baseline_dependence"]}
    n["seeds"] = out = seeds.summary(ctx, y, ref, n, rows, seed_specs(), st)
    t = seeds.ci_text
    res.table("q3_seeds", seeds.table(rows, {
        **{f"lung ratio, {k}": (lambda r, k=k: t(r["lung_ratio"][k])) for k in CLASSES},
        "regions answer": lambda r: r["words"]["answer"],
        "class-specific beyond the input (paired)": lambda r: t(r["specificity_vs_input"], 3),
        "Spearman between baselines": lambda r: t(r["baseline_spearman"]),
        "baseline dependence": lambda r: r["words"]["baseline_dependence"]}),
        f"Q3's headline numbers for each of the {out['n']} seeds of the main recipe, on {out['rule']} "
        f"({st['level']:.0%} bootstrap intervals over images). The report's verdicts come from the main model on all "
        f"{len(x)} explained images; a verdict holds for the recipe when every seed reaches, on these images, the "
        "main model's word on them.")


def _baselines(ctx: Context, model, x, target, rp, res: Result, st: dict, *, labels,
               image_names) -> None:
    """IG of every explained image with each baseline, all at the same fixed step count."""
    a = ctx.cfg.section("attribution")
    names = xb.BASELINES
    maps, rows = {}, []
    for name in names:
        b = store.baseline_images(name, x, ctx)
        r = store.get(ctx, "main", "ig", name, x, target, adaptive=False)
        maps[name] = np.abs(similarity.to_2d(r.attributions))
        pb = np.mean([predict_probs(model, bb) for bb in (b if b.ndim == 5 else [b])], axis=0)
        rows.append({"baseline": name, "P(PNEUMONIA) of baseline": float(pb.mean()),
                     "F(x) - F(baseline)": float(np.mean(r.f_image - r.f_baseline)),
                     "|F(x) - F(baseline)|, min": float(np.min(np.abs(r.f_image - r.f_baseline))),
                     "median gap": float(np.median(r.gap)), "max gap": float(np.max(r.gap))})
    ctx.save_arrays("ig_baselines", targets=target, inputs=x, **{f"attr_{k}": v for k, v in maps.items()})
    k, cells = len(names), st["cells"]
    pooled = {b: similarity.pool(m, cells) for b, m in maps.items()}
    per_spear, per_pixel = np.ones((k, k, len(x))), np.ones((k, k, len(x)))   # comparison resolution, pixels
    per_ssim = np.ones_like(per_spear)
    for i in range(k):
        for j in range(i + 1, k):
            u, v = names[i], names[j]
            per_spear[i, j] = per_spear[j, i] = similarity.pairwise(pooled[u], pooled[v], similarity.spearman)
            per_pixel[i, j] = per_pixel[j, i] = similarity.pairwise(maps[u], maps[v], similarity.spearman)
            per_ssim[i, j] = per_ssim[j, i] = similarity.pairwise(maps[u], maps[v], similarity.ssim)
    spear, ssim = per_spear.mean(-1), per_ssim.mean(-1)
    res.table("q3_baselines", pd.DataFrame(rows), "Baselines: the model's P(PNEUMONIA) for the baseline "
              f"image, the explained margin difference and the completeness gap, over the {len(x)} explained "
              f"test images (all at {a['ig_steps']} steps).")
    shown = measures.grid_images(rp, labels, measures.GRID_PER_CLASS)
    grid = [[plots.Panel(x[i], "gray") for i in shown]] + \
        [[plots.Panel(maps[b][i], "heat") for i in shown] for b in names]
    res.figure("q3_baseline_grid", plots.panel_grid(
        grid, row_titles=["image"] + [f"|IG| with the {b} baseline" for b in names],
        col_titles=[f"{Path(str(image_names[i])).name} ({CLASSES[labels[i]]})" for i in shown]),
        f"|IG| of {len(shown)} report images (the first {measures.GRID_PER_CLASS} of each class; columns) for "
        "each baseline (rows).")
    res.figure("q3_baseline_spearman", plots.matrix(spear, names, title=f"Spearman of |IG|, {cells}x{cells} cells"),
               f"Mean Spearman correlation of |IG| maps between baselines over {len(x)} images, the maps "
               f"average-pooled to {cells}x{cells} cells (the resolution where this report compares maps).")
    res.figure("q3_baseline_ssim", plots.matrix(ssim, names, title="SSIM of |IG|", vmin=0),
               f"Mean SSIM of |IG| maps between baselines over {len(x)} images.")
    _baseline_numbers(ctx, res.numbers, rows, {"cells": per_spear, "pixels": per_pixel, "ssim": per_ssim},
                      maps, st, len(x))
    return maps


def _baseline_numbers(ctx: Context, n: dict, rows: list[dict], per: dict, maps: dict, st: dict,
                      n_images: int) -> None:
    """Q3.4's numbers: per baseline, the agreement between baselines with intervals and the words. The
    headline compares the maps at the comparison resolution (``attribution.comparison_cells``) over the
    baselines whose median completeness gap meets ``attribution.ig_tolerance`` (the others are listed);
    the pixel level is the second line."""
    names, k = xb.BASELINES, len(xb.BASELINES)
    per_spear, per_ssim = per["cells"], per["ssim"]
    spear = per_spear.mean(-1)
    off = ~np.eye(k, dtype=bool)
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    tol = ctx.cfg["attribution.ig_tolerance"]
    kept = [r["baseline"] for r in rows if r["median gap"] <= tol]
    pairs = np.array([[a in kept and b in kept and a != b for b in names] for a in names])
    n["baselines_kept"] = kept
    n["baselines_left_out"] = [b for b in names if b not in kept]
    n["baselines_left_out_text"] = ", ".join(n["baselines_left_out"])
    n["baselines_some_left_out"] = bool(n["baselines_left_out"])
    n["baseline_cells"] = st["cells"]
    nan = {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    if len(kept) > 1 and not np.allclose(per_spear[pairs].mean(0), baseline_spearman(maps, st["cells"], kept)):
        raise AssertionError("baseline_spearman disagrees with the matrix of Q3.4")
    n["baseline_spearman"] = intervals.mean_ci(per_spear[pairs].mean(0), **ci).as_dict() if len(kept) > 1 else nan
    n["baseline_spearman_pixels"] = (intervals.mean_ci(per["pixels"][pairs].mean(0), **ci).as_dict()
                                     if len(kept) > 1 else nan)
    n["baseline_spearman_all"] = intervals.mean_ci(per_spear[off].mean(0), **ci).as_dict()
    n["baseline_grid_per_class"] = measures.GRID_PER_CLASS
    n["baseline_images"] = int(n_images)
    n["baselines"] = {r["baseline"]: {"p_baseline": r["P(PNEUMONIA) of baseline"],
                                      "delta": r["F(x) - F(baseline)"],
                                      "median_gap": r["median gap"], "max_gap": r["max gap"]} for r in rows}
    n["baseline_ssim"] = intervals.mean_ci(per_ssim[off].mean(0), **ci).as_dict()
    i, j = np.unravel_index(np.argmin(np.where(off, spear, np.inf)), spear.shape)
    n["baseline_least_similar"] = {"a": names[i], "b": names[j],
                                   **intervals.mean_ci(per_spear[i, j], **ci).as_dict()}
    n["baseline_black_p"] = n["baselines"]["black"]["p_baseline"]
    n["baseline_cut"] = st["baseline_sensitive"]
    bs = n["baseline_spearman"]
    n["baseline_dependence"] = dependence_word(bs, st["baseline_sensitive"])
    n["baseline_dependence_told"] = n["baseline_dependence"] != "cannot tell"
    # any constant image standardises to the same all-zero input inside the model
    bl, wh = n["baselines"]["black"], n["baselines"]["white"]
    n["constant_baselines_equal"] = bool(abs(bl["p_baseline"] - wh["p_baseline"]) < 1e-4)
    # on average, the blurred copies are called PNEUMONIA at the operating threshold of Q2
    n["blurred_called_pneumonia"] = bool(n["baselines"]["blurred"]["p_baseline"] >= n["threshold"])
    n["black_gap_problem"] = bool(bl["median_gap"] > ctx.cfg["attribution.ig_tolerance"])
    n["blurred_gap_ok"] = bool(n["baselines"]["blurred"]["median_gap"] <= ctx.cfg["attribution.ig_tolerance"])


SECTION = Section(
    name="q3", title="Q3 Integrated Gradients", run=run,
    sources=sources.of(__file__, measures.HAND_MASKS),
    config=("data.", "attribution.", "verdicts.", "sanity.images_per_class", "train.replicates",
            "random_labels.target_accuracy"),
    models=("main", "replicates", "random"),     # random: the learned-nothing reference of Q3.2 (report/learned.py)
    subs=(
        Sub("Q3.1", "IG maps of 5 NORMAL and 5 PNEUMONIA test images", "q3_1.md",
            figures=("q3_maps_normal", "q3_maps_pneumonia")),
        Sub("Q3.2", "Do the maps highlight sensible regions?", "q3_2.md",
            figures=(Appendix("q3_masks"), "q3_zones"), tables=(Appendix("q3_regions"), Appendix("q3_zones"))),
        Sub("Q3.3", "Are the maps consistent across samples?", "q3_3.md", figures=("q3_mean",)),
        Sub("Q3.4", "The effect of the baseline", "q3_4.md",
            figures=("q3_baseline_spearman", Appendix("q3_baseline_grid"), Appendix("q3_baseline_ssim")),
            tables=(Appendix("q3_baselines"),)),
        Sub("Q3.5", "Do the answers hold for other training seeds?", "q3_5.md", tables=(Appendix("q3_seeds"),)),
    ))

"""Q4: Grad-CAM (tf-keras-vis, through xaikit.gradcam) and its comparison with IG."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaikit import forward, intervals, plots, similarity
from xaikit.data import CLASSES
from xaikit.faithfulness import deletion_insertion, ranking_cells, road_imputer, same_class_donors, sign_flip_p
from xaikit.pipeline import to_float
from xaikit.sanity import holm

from . import explained, learned, measures, samples, seeds, sources
from . import maps as store
from .context import Context, log
from .explained import Explained
from .maps import baseline_images, cam_layers
from .progress import bar
from .section import Appendix, Result, Section, Sub


def roughness(maps: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring pixels of each map scaled to [0, 1]."""
    out = []
    for m in similarity.to_2d(maps):
        u = similarity.unit_range(np.abs(m))
        out.append((np.abs(np.diff(u, axis=0)).mean() + np.abs(np.diff(u, axis=1)).mean()) / 2)
    return np.array(out)


MAPS = ("IG", "Grad-CAM", "random")
PAIRS = (("IG", "Grad-CAM"), ("IG", "random"), ("Grad-CAM", "random"))


def run(ctx: Context) -> Result:
    model, _ = ctx.model("main")
    a = ctx.cfg.section("attribution")
    st = measures.settings(ctx)
    e = explained.main(ctx)
    x, y, target, probs, names = e.x, e.y, e.target, e.probs, e.names
    thr = e.threshold
    s = samples.choose(ctx)
    rp = s.report_pos
    layers = cam_layers(ctx, model)   # from the model in use
    res = Result()
    n = res.numbers
    if layers.layer is None:          # no convolutional layer: the section is skipped, IG still runs
        log(f"Q4 skipped: {layers.reason}")
        n.update(skipped=layers.reason, is_skipped=True, layer=None, seeds=None, has_seeds=False)
        (ctx.build / "attributions" / "gradcam_main.npz").unlink(missing_ok=True)   # no stale maps in the explorer
        return res
    layer, early_layer = layers.layer, layers.early
    log(f"Grad-CAM ({layer}) for {len(x)} test images")
    explainer = store.explainer(ctx, model, layer)
    cam = store.get(ctx, "main", "gradcam", layer, x, target).maps
    early = store.get(ctx, "main", "gradcam", early_layer, x, target).maps if early_layer else None
    ctx.save_arrays("gradcam_main", names=names, inputs=x, labels=y, targets=target, maps=cam,
                    layer=np.array(layer), **({f"maps_{early_layer}": early} if early_layer else {}),
                    **measures.per_image_shares(cam, e.masks, ctx.cfg["verdicts.border_frac"]))
    n["skipped"], n["is_skipped"] = None, False
    n["layer"] = layer
    n["early_layer"] = early_layer
    n["has_early_layer"] = bool(early_layer)
    g = n["grid"] = layers.grid
    n["early_grid"] = layers.early_grid
    n["flat_maps"] = int(np.sum(cam.reshape(len(cam), -1).max(1) == 0))
    n["early"] = measures.brightness_numbers(cam, early, st) if early_layer else None   # why the earlier column prints dark
    n["upsampling"] = measures.upsampling_numbers(explainer.grid(x, target), cam, e.masks, st)
    caps = measures.caption_rows(names[rp], y[rp], probs[rp], target[rp], thr)
    _map_figures(e, cam, early, rp, caps, n, res)
    nulls = {"input": e.nulls["input"], "random": measures.random_maps(cam.shape, g, a["seed"])}
    nothing = _regions(ctx, e, cam, nulls, g, st, res)
    n["consistency"] = c = measures.consistency_numbers(cam, nulls, st, labels=y, targets=target)
    c["learned"] = measures.learned_specificity(cam, nulls["input"], learned.own_maps(ctx, nothing, st["cells"]),
                                                target, st, c, none_reason=n["learned"]["reason"])
    res.figure("q4_mean", measures.mean_map_figure(cam, target, x, "Grad-CAM"),
               f"Mean image and mean Grad-CAM map per explained target (the decided class) over {len(x)} test images.")
    _compare(e, cam, g, rp, st, res, caps, y)
    rand_pixels = measures.random_maps(cam.shape, 0, a["seed"] + 1)
    _faithfulness(ctx, model, x, target, {"IG": similarity.to_2d(e.ig.maps), "Grad-CAM": cam,
                                          "random": rand_pixels}, st, res, g)
    _seeds(ctx, e, cam, nulls, rand_pixels, g, st, res, nothing)
    return res


def _regions(ctx: Context, e: Explained, cam: np.ndarray, nulls: dict, g: int, st: dict,
             res: Result) -> learned.Reference:
    """Q4.2's numbers and tables: regions with the masks of Q3 (against the learned-nothing reference too, which it
    returns: the counted random-label models' Grad-CAM of the same images and targets) and zones."""
    n, y = res.numbers, e.y
    nothing = learned.reference(ctx, "gradcam", e.x, e.target)     # decided on validation before any map is compared
    n["learned"] = learned.numbers(nothing)
    n["regions"] = measures.region_numbers(cam, e.masks, y, learned.with_reference(nulls, nothing.maps), st)
    res.table("q4_regions", measures.region_table(n["regions"], "Grad-CAM"),
              f"Share of Grad-CAM mass in the lung mask and the border zone against their area share "
              f"({st['level']:.0%} bootstrap intervals over images), beside a model that learned nothing (per image the "
              "mean unit-mass Grad-CAM of the random-label models counted in Q5.1, same images and targets; when any "
              "counts), the spatial prior (the mean Grad-CAM of the other images of the class), the input alone "
              f"(|x - baseline|) and a random map drawn at {g}x{g} and upsampled.")
    n["zones"] = measures.zone_numbers(cam, e.masks[0], y, nulls, st)    # anatomy in words (Q4.2)
    res.table("q4_zones", measures.zone_table(n["zones"], "Grad-CAM"),
              f"Grad-CAM by zone (the zones of Q3.2): share of the mass and ratio share / area per true class "
              f"({st['level']:.0%} bootstrap intervals over images), the ratio of the input alone, and the difference "
              "of ratios between classes (two-sample interval).")
    return nothing


def _map_figures(e: Explained, cam: np.ndarray, early: np.ndarray | None, rp: np.ndarray, caps: list[str], n: dict,
                 res: Result) -> None:
    """Q4.1's figures: image, Grad-CAM, overlay (and the earlier layer's overlay) of every report image."""
    x, y, layer, early_layer, g = e.x, e.y, n["layer"], n["early_layer"], n["grid"]
    for k, c in enumerate(CLASSES):
        rows, titles = [], []
        for j in np.flatnonzero(y[rp] == k):
            i = rp[j]
            titles.append(caps[j])
            rows.append([plots.Panel(x[i], "gray"), plots.Panel(cam[i], "heat", clip=100),
                         plots.Panel(cam[i], "overlay", under=x[i], clip=100)] +
                        ([plots.Panel(early[i], "overlay", under=x[i], clip=100)] if early_layer else []))
        res.figure(f"q4_maps_{c.lower()}", plots.panel_grid(rows, row_titles=titles, col_titles=(
            "image", f"Grad-CAM {layer}", "overlay") + ((f"overlay, {early_layer}",) if early_layer else ())),
            f"Grad-CAM of the {len(rows)} {c} report images for the decided class, at `{layer}` "
            f"({g}x{g} feature map)" + (f" and at the earlier `{early_layer}` ({n['early_grid']}x{n['early_grid']})."
                                        if early_layer else " (this model has no layer at least 4 times finer)."))


def voting_verdicts(fills: list[dict]) -> set[str]:
    """The per-fill verdicts that vote on the pooled one: those of fills with an informative comparison (a fill
    whose curves are all saturated says nothing about which map is more faithful); none votes: {"uninformative"}."""
    return {f["summary"]["verdict"] for f in fills if f["summary"]["any_informative"]} or {"uninformative"}


def faithfulness_word(fills: list[dict]) -> str:
    """The faithfulness verdict of Q4.4's first sentence: the winner when every fill with an informative
    comparison names the same one (IG, Grad-CAM, neither; uninformative when none has one), else "depends on the fill"."""
    verdicts = voting_verdicts(fills)
    return verdicts.pop() if len(verdicts) == 1 else "depends on the fill"


def agreement_word(grid: dict, cut: float) -> str:
    return ("largely agree" if grid["lo"] >= cut else "disagree more than they agree" if grid["hi"] < cut else
            "agree only partly (the interval contains the cut-off)")


def seed_faithfulness(ctx: Context, model, x, target, maps: dict, st: dict, grid: int) -> list[dict]:
    """The seeds' lighter Q4.4: every fill of the main design, ranked at its cells (no finer than Grad-CAM's
    ``grid``), the maps IG, Grad-CAM and random; gates, paired intervals, one Holm family and per-fill summaries."""
    _, cells = faith_cells(ctx, grid)
    rname = "cells"
    _, designs = _fill_designs(ctx, x, target, _fixed_fill(ctx))
    p_image = forward.predict(model, x)[np.arange(len(x)), target]
    fills, all_cells = [], []
    for fname, (steps, kw) in designs.items():
        curves = {(rname, m): deletion_insertion(model, x, maps[m], target, steps=steps, cells=cells, **kw)
                  for m in MAPS}
        f_out = {"name": fname, "cells": []}
        for k, c in enumerate(CLASSES):
            sel = target == k
            if sel.sum() < 2:
                continue
            gate = saturation_gate(p_image[sel], curves[rname, "random"].deletion[sel, -1], st)
            for kind in ("deletion", "insertion"):
                f_out["cells"].append({"curve": kind, "ranked_at": rname, "target": c, **gate,
                                       **_cell(curves, kind, rname, sel, MAPS, st)})
        all_cells += f_out["cells"]
        fills.append(f_out)
    holm_family(all_cells, st["alpha"])
    for f_out in fills:
        f_out["summary"] = winner_counts(f_out["cells"])
    return fills


def seed_specs() -> dict:
    """Q4's verdicts checked over seeds, in the order Q4.5 lists them (see :class:`report.seeds.Spec`)."""
    return {**seeds.shared_specs("Grad-CAM", "Q4"),
            "agreement": seeds.Spec(
                "agreement with IG (Q4.4)",
                "mean Spearman of |IG| and Grad-CAM at Grad-CAM's grid: \"largely agree\" when its whole interval lies "
                "at or above {cut}, \"disagree more than they agree\" when below, else \"agree only partly\"",
                lambda st: {"cut": st["agree"]}, lambda r: r["spearman_grid"], lambda n: n["compare"]["spearman_grid"]),
            "faithfulness": seeds.Spec(
                "the more faithful method (Q4.4)",
                "the method that wins most informative deletion/insertion comparisons under every fill that has one "
                "(paired intervals, one Holm family, alpha {alpha}), else \"depends on the fill\"", lambda st: {"alpha": st["alpha"]},
                lambda r: r["faithfulness"],
                lambda n: {f["name"]: f["summary"] for f in n["faithfulness"]["fills"]})}


def _seeds(ctx: Context, e: Explained, cam: np.ndarray, nulls: dict, rand_pixels: np.ndarray, g: int, st: dict,
           res: Result, nothing: learned.Reference) -> None:
    """Q4's headline verdicts for every seed of the main recipe, on the images and IG maps of Q3.5, each seed's
    regions against the learned-nothing reference ``nothing`` of the same images at its own decisions."""
    pos = seeds.positions(ctx, e.y)
    xs, ys, ms = e.x[pos], e.y[pos], e.masks[pos]
    nul = {k: v[pos] for k, v in nulls.items()}
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    rows = []
    for name, model, card in seeds.replicates(ctx):
        if name == "main":
            attr, target, c_s = e.ig.maps[pos], e.target[pos], cam[pos]
        else:
            log(f"Grad-CAM and deletion/insertion of seed {name} for {len(xs)} test images")
            attr, target = explained.seed_ig(ctx, name, model, card, xs)
            c_s = store.get(ctx, name, "gradcam", res.numbers["layer"], xs, target).maps
        ig_abs = np.abs(similarity.to_2d(attr))
        r = measures.region_numbers(c_s, ms, ys, learned.with_reference(
            nul, learned.on_subset(ctx, nothing, pos, xs, target)), st)
        cw = seeds.consistency_words(c_s, nul["input"], st, labels=ys, targets=target, none_reason=learned.numbers(
            nothing)["reason"], learned=learned.own_maps(ctx, nothing, st["cells"], pos, target))
        grid = intervals.mean_ci(similarity.pairwise(similarity.pool(ig_abs, g), similarity.pool(c_s, g),
                                                     similarity.spearman), **ci).as_dict()
        fills = seed_faithfulness(ctx, model, xs, target, {"IG": similarity.to_2d(attr), "Grad-CAM": c_s,
                                                           "random": rand_pixels[pos]}, st, g)
        words = {**seeds.shared_words(r, cw.level, cw.specific, cw.learned_word), "agreement": agreement_word(grid, st["agree"]),
                 "faithfulness": faithfulness_word(fills)}
        rows.append({"model": name, "seed": int(card.get("seed", 1)), "threshold": float(card["val_threshold"]),
                     "n": int(len(ys)), "lung_ratio": {k: r[k]["map"]["lung_ratio"] for k in CLASSES},
                     "vs_input": {k: r[k]["vs_input"] for k in CLASSES},
                     "specificity_vs_input": cw.specificity, "specificity_vs_learned": cw.vs_learned,
                     "within": cw.within, "spearman_grid": grid,
                     "faithfulness": {f["name"]: f["summary"] for f in fills}, "words": words})
    n = res.numbers
    ref = {**seeds.shared_reference(n), "agreement": n["compare"]["agreement"],
           "faithfulness": faithfulness_word(n["faithfulness"]["fills"])}
    n["faithfulness"]["word"] = ref["faithfulness"]
    n["seeds"] = out = seeds.summary(ctx, e.y, ref, n, rows, seed_specs(), st)
    n["has_seeds"] = True
    t = seeds.ci_text
    res.table("q4_seeds", seeds.table(rows, {
        **{f"lung ratio, {k}": (lambda r, k=k: t(r["lung_ratio"][k])) for k in CLASSES},
        "regions answer": lambda r: r["words"]["answer"],
        "class-specific beyond the input (paired)": lambda r: t(r["specificity_vs_input"], 3),
        f"Spearman with |IG| at {g}x{g}": lambda r: t(r["spearman_grid"]),
        "more faithful (IG / Grad-CAM / neither wins, per fill)": lambda r: "; ".join(
            f"{FILL_LABELS[f]}: {s['ig']}/{s['gradcam']}/{s['neither']}" for f, s in r["faithfulness"].items()),
        "faithfulness verdict": lambda r: r["words"]["faithfulness"]}),
        f"Q4's headline numbers for each of the {out['n']} seeds of the main recipe, on {out['rule']} "
        f"({st['level']:.0%} bootstrap intervals over images). Faithfulness here ranks at "
        f"{faith_cells(ctx, g)[0]} as in Q4.4 (no crossed design), "
        "one Holm family per seed. The report's verdicts come from the main model on all explained images; a "
        "verdict holds for the recipe when every seed reaches, on these images, the main model's word on them.")


def _compare(e: Explained, cam: np.ndarray, g: int, rp: np.ndarray, st: dict, res: Result, caps: list[str],
             labels: np.ndarray) -> None:
    """Q4.4 agreement (Spearman at Grad-CAM's grid and at pixels) and roughness, with intervals."""
    x = e.x
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    ig_abs = np.abs(similarity.to_2d(e.ig.maps))
    rho_grid = similarity.pairwise(similarity.pool(ig_abs, g), similarity.pool(cam, g), similarity.spearman)
    rho_full = similarity.pairwise(ig_abs, cam, similarity.spearman)
    rough_ig, rough_cam = roughness(ig_abs), roughness(cam)
    grid = intervals.mean_ci(rho_grid, **ci).as_dict()
    rough = intervals.bootstrap(lambda u, v: np.mean(u - v), rough_ig, rough_cam, **ci).as_dict()
    cut = st["agree"]
    res.numbers["compare"] = {  # agreement: agreement_word
        "spearman_grid": grid, "spearman_full": intervals.mean_ci(rho_full, **ci).as_dict(),
        "rough_ig": float(rough_ig.mean()), "rough_cam": float(rough_cam.mean()), "rough_diff": rough,
        "rougher": "IG" if rough["lo"] > 0 else "Grad-CAM" if rough["hi"] < 0 else None,
        "has_rougher": bool(rough["lo"] > 0 or rough["hi"] < 0),
        "agree_cut": cut, "agreement": agreement_word(grid, cut)}
    shown = measures.grid_images(rp, labels, measures.GRID_PER_CLASS)
    cap = dict(zip(rp.tolist(), caps))
    side = [[plots.Panel(x[i], "gray"), plots.Panel(ig_abs[i], "heat"),
             plots.Panel(similarity.pool(ig_abs[i:i + 1], g)[0], "heat", clip=100),
             plots.Panel(cam[i], "heat", clip=100)] for i in shown]
    res.figure("q4_side", plots.panel_grid(side, col_titles=(
        "image", "|IG|", f"|IG| pooled to {g}x{g}", "Grad-CAM"),
        row_titles=[f"{cap[int(i)]}; rho {rho_grid[i]:.2f}" for i in shown]),
        f"IG and Grad-CAM side by side for {len(shown)} report images (the first {measures.GRID_PER_CLASS} of "
        f"each class); rho is the Spearman correlation at the {g}x{g} "
        "Grad-CAM resolution.")


# Q4.4's saturation gate reads verdicts.saturation_span and ROAD's step count attribution.road_steps
# (xaikit.toml says why ROAD uses fewer steps than attribution.faithfulness_steps).
ROAD_FILL = "road"
DONOR_FILL = "same_class"   # per image, a training image whose label is the explained target (same_class_donors)
FILL_LABELS = {"train_mean": "training-mean image", "blurred": "blurred image",
               ROAD_FILL: "ROAD noisy linear imputation", DONOR_FILL: "training image of the same class"}
MATCHED = "IG, fill as baseline"   # the crossed design's IG: its baseline equals the fixed fill


def saturation_gate(p_image: np.ndarray, p_removed: np.ndarray, st: dict) -> dict:
    """Is a cell informative? Its curves run between P(target | image) and P(target | fully
    removed image); when the interval of their mean difference is not wholly above
    ``st["saturation_span"]`` (``verdicts.saturation_span``)
    the curves of every map are squeezed into a band too narrow to rank maps by."""
    span = intervals.bootstrap(lambda u, v: np.mean(u - v), p_image, p_removed, n_boot=st["n_boot"],
                               seed=st["seed"], level=st["level"]).as_dict()
    return {"span": span, "informative": bool(span["lo"] > st["saturation_span"])}


def holm_family(cells: list[dict], alpha: float) -> None:
    """Holm-adjust the IG - Grad-CAM p-values of the informative cells as one family, in place:
    each such comparison gets ``p_holm`` and ``winner_holm`` (the better method when p_holm <
    alpha, by the sign of the mean difference), uninformative ones None."""
    family = [c for c in cells if c["informative"]]
    adjusted = holm([c["IG - Grad-CAM"]["p"] for c in family])
    for c in cells:
        c["IG - Grad-CAM"].update(p_holm=None, winner_holm=None)
    for c, p in zip(family, adjusted):
        d = c["IG - Grad-CAM"]
        better_if_higher = c["curve"] == "insertion"
        d["p_holm"] = float(p)
        if p < alpha:
            d["winner_holm"] = "IG" if (d["value"] > 0) == better_if_higher else "Grad-CAM"
    for c in cells:
        c["IG - Grad-CAM"]["has_winner"] = c["IG - Grad-CAM"]["winner_holm"] is not None


FAITH_WORDS = ("IG", "Grad-CAM", "mixed", "no majority", "neither", "uninformative")
FAITH_CLAIMS = {   # what each verdict lets the report say, once (Q4.4, the findings)
    "IG": "IG ranks the image's parts more faithfully than Grad-CAM (it wins most informative comparisons)",
    "Grad-CAM": "Grad-CAM ranks the image's parts more faithfully than IG (it wins most informative comparisons)",
    "mixed": "each method ranks the image's parts more faithfully in some comparisons, neither in most",
    "no majority": "{who} ranks the image's parts more faithfully in some comparisons but not in most",
    "neither": "neither ranks the image's parts measurably more faithfully",
    "uninformative": "no fill gives an informative faithfulness comparison"}
FAITH_DEPENDS = "which of them ranks the image's parts more faithfully depends on the fill"


def pooled_summary(cells: list[dict], fills: list[dict]) -> dict:
    """:func:`winner_counts` over every fill's cells; its words and claim only when every fill with an
    informative comparison names the same winner (else the claim is that it depends on the fill)."""
    out = winner_counts(cells)
    out["same_verdict"] = same = len(voting_verdicts(fills)) == 1
    out["says"] = {w: same and said for w, said in out["says"].items()}
    if not same:
        out["claim"] = FAITH_DEPENDS
        out["Claim"] = FAITH_DEPENDS[0].upper() + FAITH_DEPENDS[1:]
    return out


def winner_counts(cells: list[dict]) -> dict:
    """How many informative IG - Grad-CAM comparisons each method wins after Holm's adjustment,
    how many neither, and how many cells the saturation gate left out; ``verdict`` names the
    outcome: a method that wins a majority of the informative comparisons ("IG", "Grad-CAM"), wins
    for both without one ("mixed"), wins for one method only without a majority ("no majority"),
    no win ("neither"), or "uninformative" when none is informative; ``claim`` says it in words."""
    won = [c["IG - Grad-CAM"]["winner_holm"] for c in cells if c["informative"]]
    out = {"ig": won.count("IG"), "gradcam": won.count("Grad-CAM"), "neither": sum(w is None for w in won),
           "total": len(won), "uninformative": sum(not c["informative"] for c in cells)}
    out["verdict"] = ("uninformative" if not won else "IG" if 2 * out["ig"] > len(won) else
                      "Grad-CAM" if 2 * out["gradcam"] > len(won) else "mixed" if out["ig"] and out["gradcam"] else
                      "no majority" if out["ig"] or out["gradcam"] else "neither")
    out["says"] = measures.says(out["verdict"], FAITH_WORDS)
    out["claim"] = FAITH_CLAIMS[out["verdict"]].format(who="IG" if out["ig"] else "Grad-CAM")
    out["Claim"] = out["claim"][0].upper() + out["claim"][1:]
    out.update(any_informative=out["total"] > 0, any_uninformative=out["uninformative"] > 0)
    out["some_left_out"] = out["any_informative"] and out["any_uninformative"]
    return out


def _cell(curves: dict, kind: str, rname: str, sel: np.ndarray, maps: tuple, st: dict) -> dict:
    """Areas under one curve for the images ``sel``, their intervals and paired differences."""
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    auc = {m: getattr(curves[rname, m], f"{kind}_auc")[sel] for m in maps}
    cell = {"n": int(sel.sum())}
    for m in maps:
        cell[m] = intervals.mean_ci(auc[m], **ci).as_dict()
    pairs = PAIRS + (((MATCHED, "IG"), (MATCHED, "Grad-CAM")) if MATCHED in maps else ())
    for p, q in pairs:
        d = intervals.bootstrap(lambda u, v: np.mean(u - v), auc[p], auc[q], **ci).as_dict()
        d["winner"] = measures.winner(d, p, q, higher_is_better=kind == "insertion")
        d["first_wins"] = d["winner"] == p          # "IG beats the random map" (Q4.4's cell lines)
        cell[f"{p} - {q}"] = d
    cell["IG - Grad-CAM"]["p"] = sign_flip_p(auc["IG"] - auc["Grad-CAM"], n_perm=st["n_boot"], seed=st["seed"])
    return cell


def _faithfulness(ctx: Context, model, x, target, maps: dict, st: dict, res: Result, grid: int) -> None:
    """Deletion and insertion per fill (a low-pass image, ROAD's imputation, a training image of the
    explained target's class) and target class, ranked at cells no finer than Grad-CAM's ``grid``,
    with paired intervals, a saturation gate and one Holm family."""
    a = ctx.cfg.section("attribution")
    fill_name = _fixed_fill(ctx)
    fill, maps, resolutions, designs = _faith_designs(ctx, x, target, maps, fill_name, grid)
    cells_res = next(iter(resolutions))
    out = {"fill": fill_name, "resolutions": list(resolutions), "level": st["level"], "min_span": st["saturation_span"],
           "alpha": st["alpha"], "road_steps": a["road_steps"], "steps": a["faithfulness_steps"],
           "matched_baseline": fill_name, "ig_baseline": a["ig_baseline"], "crossed_at": cells_res,
           "cells": resolutions[cells_res], "requested_cells": a["faithfulness_cells"], "grid": grid,
           "capped": resolutions[cells_res] < a["faithfulness_cells"], "donor_label": FILL_LABELS[DONOR_FILL],
           "p_fill": float(np.mean(forward.predict(model, fill)[:, 1])), "fills": []}
    p_image = forward.predict(model, x)[np.arange(len(x)), target]
    all_cells = []
    for fname, (steps, rmaps, kw) in designs.items():
        curves = _faith_curves(model, x, target, maps, fname, steps, rmaps, resolutions, kw)
        f_out, panels = _faith_cells(curves, fname, steps, rmaps, target, p_image, st)
        _faith_figures(res, curves, panels, fname, steps, cells_res)
        all_cells += f_out["cells"]
        out["fills"].append(f_out)
    holm_family(all_cells, st["alpha"])
    for f_out in out["fills"]:
        f_out["summary"] = winner_counts(f_out["cells"])
    rows, crossed_rows = _faith_rows(out["fills"])
    _faith_summary(out, all_cells)
    res.numbers["faithfulness"] = out
    res.table("q4_faith", pd.DataFrame(rows),
              f"Areas under the deletion (lower is better) and insertion (higher is better) curves "
              f"(Petsiuk et al. 2018) per fill, ranked at {cells_res}, mean [{st['level']:.0%} interval] over images, the paired "
              f"IG - Grad-CAM difference and its sign-flip p-value after Holm's adjustment over the informative "
              f"cells; a cell is informative when P(target | image) - P(target | fully removed) lies wholly "
              f"above {st['saturation_span']} (column 6).")
    res.table("q4_faith_crossed", pd.DataFrame(crossed_rows),
              f"Crossed design under the {FILL_LABELS[fill_name]} fill, ranked at {cells_res}: IG recomputed with "
              f"the fill as its baseline ({a['ig_steps']} steps) beside the main IG ({a['ig_baseline']} baseline); areas and "
              f"paired differences, mean [{st['level']:.0%} interval] over images.")


def _fixed_fill(ctx: Context) -> str:
    """Q4.4's low-pass fixed fill: the training mean, or the blurred image when IG's baseline is the training mean."""
    return "blurred" if ctx.cfg["attribution.ig_baseline"] == "train_mean" else "train_mean"


def faith_cells(ctx: Context, grid: int) -> tuple[str, int]:
    """Q4.4's one ranking resolution (name, cells per side): attribution.faithfulness_cells, or Grad-CAM's
    ``grid`` when that is coarser; never pixels, where IG's own resolution would favour it."""
    cells = ranking_cells(ctx.cfg["attribution.faithfulness_cells"], grid)
    return f"{cells}x{cells} cells", cells


def donor_images(ctx: Context, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per explained image, a training image (seeded by attribution.seed) whose label is the image's explained
    target: the model's decision, not the test label, which may describe the test images but not choose for them."""
    p = ctx.prepared()
    donors = to_float(p.x("train")[same_class_donors(p.y("train"), target, ctx.cfg["attribution.seed"])])
    if donors.shape != np.shape(x):
        raise ValueError(f"training images expect the explained images' shape {np.shape(x)}, got {donors.shape}")
    return donors


def _fill_designs(ctx: Context, x, target, fill_name: str) -> tuple[np.ndarray, dict]:
    """Q4.4's fills in order (the fixed low-pass ``fill_name``, ROAD, the same-class training image):
    the fixed fill's images and fill -> (steps, keywords of deletion_insertion)."""
    a = ctx.cfg.section("attribution")
    fill, donors = baseline_images(fill_name, x, ctx), donor_images(ctx, x, target)
    return fill, {fill_name: (a["faithfulness_steps"], dict(fill=fill, start=fill)),
                  ROAD_FILL: (a["road_steps"], dict(impute=road_imputer(baseline_images("train_mean", x[:1], ctx)[0]),
                                                    seed=a["seed"])),
                  DONOR_FILL: (a["faithfulness_steps"], dict(fill=donors, start=donors))}


def _faith_designs(ctx: Context, x, target, maps: dict, fill_name: str,
                   grid: int) -> tuple[np.ndarray, dict, dict, dict]:
    """Q4.4's designs: the fill, the maps with the crossed design's IG (from the store), the one resolution (no
    finer than Grad-CAM's ``grid``), per-fill setup (the crossed design under the fixed fill only)."""
    matched = store.get(ctx, "main", "ig", fill_name, x, target, adaptive=False)
    maps = {**maps, MATCHED: similarity.to_2d(matched.attributions)}
    cells_res, cells = faith_cells(ctx, grid)
    fill, fills = _fill_designs(ctx, x, target, fill_name)
    designs = {f: (steps, {cells_res: MAPS + ((MATCHED,) if f == fill_name else ())}, kw)   # fill -> (steps, {res: maps}, kw)
               for f, (steps, kw) in fills.items()}
    return fill, maps, {cells_res: cells}, designs


def _faith_curves(model, x, target, maps: dict, fname: str, steps: int, rmaps: dict, resolutions: dict,
                  kw: dict) -> dict:
    """Q4.4's deletion and insertion curves of one fill: (resolution, map) -> curves."""
    curves = {}
    for rname, fmaps in rmaps.items():
        for m in fmaps:
            with bar(f"deletion/insertion {m}, {rname}, {fname}", len(x), "img") as update:
                curves[rname, m] = deletion_insertion(model, x, maps[m], target, steps=steps,
                                                      cells=resolutions[rname], progress=update, **kw)
    return curves


def _faith_cells(curves: dict, fname: str, steps: int, rmaps: dict, target, p_image, st: dict) -> tuple[dict, dict]:
    """Q4.4's cells of one fill (gate, areas, paired differences per resolution and target) and its figure panels."""
    f_out = {"name": fname, "label": FILL_LABELS[fname], "steps": steps, "resolutions": list(rmaps),
             "cells": [], "gates": []}
    panels = {kind: {} for kind in ("deletion", "insertion")}
    for rname in rmaps:
        for k, c in enumerate(CLASSES):
            sel = target == k
            if sel.sum() < 2:
                continue
            # fully removed = the end of every deletion curve (the same image whatever the map)
            gate = saturation_gate(p_image[sel], curves[rname, "random"].deletion[sel, -1], st)
            f_out["gates"].append({"ranked_at": rname, "target": c, **gate})
            for kind in ("deletion", "insertion"):
                cell = {"curve": kind, "ranked_at": rname, "target": c, **gate,
                        **_cell(curves, kind, rname, sel, rmaps[rname], st)}
                f_out["cells"].append(cell)
                panels[kind][f"{rname}, target {c}"] = {m: getattr(curves[rname, m], kind)[sel] for m in MAPS}
    return f_out, panels


def _faith_figures(res: Result, curves: dict, panels: dict, fname: str, steps: int, cells_res: str) -> None:
    """Q4.4's curve figures of one fill: q4_road for ROAD, q4_same_class for the training image of the same class,
    else q4_deletion and q4_insertion."""
    fr = next(iter(curves.values())).fractions
    both = lambda fid, xlabel, caption: res.figure(fid, plots.curve_panels(   # noqa: E731
        fr, {f"{kind}, {t}": v for kind, p in panels.items() for t, v in p.items()}, xlabel=xlabel), caption)
    if fname == DONOR_FILL:
        both("q4_same_class", "share of the image deleted (deletion) / inserted (insertion)",
             f"Deletion and insertion curves (mean ± std over images), ranked at {cells_res}, {steps} steps, "
             f"where removed cells take the pixels of a {FILL_LABELS[fname]} (the explained target's; seeded), "
             "which is also where insertion starts.")
    elif fname == ROAD_FILL:
        both("q4_road", "share of the image removed (deletion) / kept (insertion)",
             f"Deletion and insertion curves with ROAD's noisy linear imputation (Rong et al. 2022; "
             f"mean ± std over images), ranked at {cells_res}, {steps} steps: deletion imputes the "
             "top-ranked cells, insertion keeps them and imputes all others.")
    else:
        for kind in ("deletion", "insertion"):
            res.figure(f"q4_{kind}", plots.curve_panels(fr, panels[kind],
                                                        xlabel=f"share of the image {kind.replace('ion', 'ed')}"),
                       f"{kind.capitalize()} curves (mean ± std over images) ranked at {cells_res}, per target "
                       f"class; removed pixels take the {FILL_LABELS[fname]}"
                       f"{'' if kind == 'deletion' else ', which is also where insertion starts'}.")


def _faith_rows(fills: list[dict]) -> tuple[list[dict], list[dict]]:
    """Q4.4's table rows: every cell of every fill (q4_faith) and the crossed design's cells (q4_faith_crossed)."""
    rows, crossed_rows = [], []
    for f_out in fills:
        for cell in f_out["cells"]:
            rows.append({"fill": f_out["label"], "curve": cell["curve"], "ranked at": cell["ranked_at"],
                         "target": cell["target"], "n": cell["n"],
                         "P(image) - P(removed)": _fmt(cell["span"]),
                         **{m: _fmt(cell[m]) for m in MAPS}, "IG - Grad-CAM": _fmt(cell["IG - Grad-CAM"]),
                         "Holm p": (f"{cell['IG - Grad-CAM']['p_holm']:.3g}" if cell["informative"]
                                    else "uninformative")})
            if MATCHED in cell:
                crossed_rows.append({"curve": cell["curve"], "ranked at": cell["ranked_at"],
                                     "target": cell["target"], "informative": "yes" if cell["informative"] else "no",
                                     MATCHED: _fmt(cell[MATCHED]), "IG": _fmt(cell["IG"]),
                                     f"{MATCHED} - IG": _fmt(cell[f"{MATCHED} - IG"]),
                                     f"{MATCHED} - Grad-CAM": _fmt(cell[f"{MATCHED} - Grad-CAM"])})
    return rows, crossed_rows


def _faith_summary(out: dict, all_cells: list[dict]) -> None:
    """Q4.4's verdict values: the pooled winner counts, the saturated targets, the crossed design's outcome."""
    out["summary"] = pooled_summary(all_cells, out["fills"])
    out["saturated"] = sorted({g["target"] for f in out["fills"] for g in f["gates"] if not g["informative"]})
    out.update(any_saturated=bool(out["saturated"]), saturated_and=" and ".join(out["saturated"]),
               saturated_comma=", ".join(out["saturated"]), resolutions_text=" and at ".join(out["resolutions"]))
    for f in out["fills"]:
        f["resolutions_text"] = ", ".join(f["resolutions"])
        for cell in f["cells"]:
            cell["curve_title"] = cell["curve"].capitalize()
    out["crossed"] = crossed_summary(out["fills"][0]["cells"], all_cells)


def crossed_summary(cells: list[dict], all_cells: list[dict]) -> dict:
    """Does IG win only when its baseline equals the fill? Over the informative ``cells`` of the
    fixed fill: how often the matched IG beats the main IG and Grad-CAM (intervals); and the
    outcome: "unmatched_wins" when the main IG, whose baseline matches no fill, wins a Holm-
    adjusted comparison under any fill (``all_cells``); "only_matched" when only the matched IG
    beats Grad-CAM; else "no_wins"."""
    inf = [c for c in cells if c["informative"] and MATCHED in c]
    out = {"total": len(inf),
           "matched_better": sum(c[f"{MATCHED} - IG"]["winner"] == MATCHED for c in inf),
           "matched_worse": sum(c[f"{MATCHED} - IG"]["winner"] == "IG" for c in inf),
           "matched_wins": sum(c[f"{MATCHED} - Grad-CAM"]["winner"] == MATCHED for c in inf),
           "unmatched_wins": sum(c["informative"] and c["IG - Grad-CAM"]["winner_holm"] == "IG" for c in all_cells)}
    out["outcome"] = ("unmatched_wins" if out["unmatched_wins"] else
                      "only_matched" if out["matched_wins"] else "no_wins")
    out["says"] = measures.says(out["outcome"], ("unmatched_wins", "only_matched", "no_wins"))
    out["informative"] = out["total"] > 0
    return out


def _fmt(e: dict) -> str:
    return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


SECTION = Section(
    name="q4", title="Q4 Grad-CAM", run=run,
    sources=sources.of(__file__, measures.HAND_MASKS),
    config=("data.", "attribution.", "verdicts.", "sanity.images_per_class", "train.replicates",
            "random_labels.target_accuracy"),
    models=("main", "replicates", "random"),     # random: the learned-nothing reference of Q4.2 (report/learned.py)
    subs=(
        Sub("Q4.1", "Grad-CAM maps of the same 10 test images", "q4_1.md",
            figures=("q4_maps_normal", "q4_maps_pneumonia")),
        Sub("Q4.2", "Do the maps highlight sensible regions?", "q4_2.md", tables=(Appendix("q4_regions"), Appendix("q4_zones"))),
        Sub("Q4.3", "Are the maps consistent across samples?", "q4_3.md", figures=("q4_mean",)),
        Sub("Q4.4", "Grad-CAM compared with IG", "q4_4.md",
            figures=(Appendix("q4_side"), Appendix("q4_deletion"), Appendix("q4_insertion"), Appendix("q4_road"),
                     Appendix("q4_same_class")),
            tables=(Appendix("q4_faith"), Appendix("q4_faith_crossed"))),
        Sub("Q4.5", "Do the answers hold for other training seeds?", "q4_5.md", tables=(Appendix("q4_seeds"),)),
    ))

"""Q4: Grad-CAM (tf-keras-vis, through xaikit.gradcam) and its comparison with IG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import intervals, plots, similarity
from xaikit.data import CLASSES
from xaikit.faithfulness import deletion_insertion
from xaikit.gradcam import GradcamExplainer

from . import measures, samples
from .context import Context, lib, log
from .progress import bar
from .q3_ig import baseline_images
from .section import Result, Section, Sub


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
    ig = ctx.load_arrays("ig_main")
    x, y, target, probs, names = ig["inputs"], ig["labels"], ig["targets"], ig["probs"], ig["names"]
    thr = float(ig["threshold"])
    s = samples.choose(ctx)
    rp = s.report_pos
    log(f"Grad-CAM ({a['gradcam_layer']}) for {len(x)} test images")
    explainer = GradcamExplainer(model, a["gradcam_layer"])
    cam = explainer(x, target)
    early = GradcamExplainer(model, a["gradcam_early_layer"])(x, target)
    ctx.save_arrays("gradcam_main", names=names, inputs=x, labels=y, targets=target, maps=cam,
                    layer=np.array(a["gradcam_layer"]), **{f"maps_{a['gradcam_early_layer']}": early},
                    **measures.per_image_shares(cam, ig["masks"], ctx.cfg["verdicts.border_frac"]))
    res = Result()
    n = res.numbers
    n["layer"] = a["gradcam_layer"]
    n["early_layer"] = a["gradcam_early_layer"]
    g = n["grid"] = int(model.get_layer(a["gradcam_layer"]).output.shape[1])
    n["early_grid"] = int(model.get_layer(a["gradcam_early_layer"]).output.shape[1])
    n["flat_maps"] = int(np.sum(cam.reshape(len(cam), -1).max(1) == 0))
    n["upsampling"] = measures.upsampling_numbers(explainer.grid(x, target), cam, ig["masks"], st)
    caps = measures.caption_rows(names[rp], y[rp], probs[rp], target[rp], thr)
    for k, c in enumerate(CLASSES):
        rows, titles = [], []
        for j in np.flatnonzero(y[rp] == k):
            i = rp[j]
            titles.append(caps[j])
            rows.append([plots.Panel(x[i], "gray"), plots.Panel(cam[i], "heat", clip=100),
                         plots.Panel(cam[i], "overlay", under=x[i], clip=100),
                         plots.Panel(early[i], "overlay", under=x[i], clip=100)])
        res.figure(f"q4_maps_{c.lower()}", plots.panel_grid(rows, row_titles=titles, cell=1.45, col_titles=(
            "image", f"Grad-CAM {a['gradcam_layer']}", "overlay", f"overlay, {a['gradcam_early_layer']}")),
            f"Grad-CAM of the {len(rows)} {c} report images for the decided class, at `{a['gradcam_layer']}` "
            f"({g}x{g} feature map) and at the earlier `{a['gradcam_early_layer']}` "
            f"({n['early_grid']}x{n['early_grid']}).")
    nulls = {"input": ig["input_alone"], "random": measures.random_maps(cam.shape, g, a["seed"])}
    n["regions"] = measures.region_numbers(cam, ig["masks"], y, nulls, st)   # the masks of Q3
    res.table("q4_regions", measures.region_table(n["regions"], "Grad-CAM"),
              f"Share of Grad-CAM mass in the lung mask and the border zone against their area share "
              f"({st['level']:.0%} bootstrap intervals over images), beside the spatial prior (the mean Grad-CAM of the "
              f"other images of the class), the input alone (|x - baseline|) "
              f"and a random map drawn at {g}x{g} and upsampled.")
    n["consistency"] = measures.consistency_numbers(cam, y, nulls, st)
    res.figure("q4_mean", measures.mean_map_figure(cam, y, x, "Grad-CAM"),
               f"Mean image and mean Grad-CAM map per class over {len(x)} test images.")
    _compare(ig, cam, g, rp, st, res)
    _faithfulness(ctx, model, x, target, {"IG": similarity.to_2d(ig["attributions"]), "Grad-CAM": cam,
                                          "random": measures.random_maps(cam.shape, 0, a["seed"] + 1)}, st, res)
    return res


def _compare(ig: dict, cam: np.ndarray, g: int, rp: np.ndarray, st: dict, res: Result) -> None:
    """Q4.4 agreement (Spearman at Grad-CAM's grid and at pixels) and roughness, with intervals."""
    x = ig["inputs"]
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    ig_abs = np.abs(similarity.to_2d(ig["attributions"]))
    rho_grid = similarity.pairwise(similarity.pool(ig_abs, g), similarity.pool(cam, g), similarity.spearman)
    rho_full = similarity.pairwise(ig_abs, cam, similarity.spearman)
    rough_ig, rough_cam = roughness(ig_abs), roughness(cam)
    grid = intervals.mean_ci(rho_grid, **ci).as_dict()
    rough = intervals.bootstrap(lambda u, v: np.mean(u - v), rough_ig, rough_cam, **ci).as_dict()
    cut = st["agree"]
    res.numbers["compare"] = {
        "spearman_grid": grid, "spearman_full": intervals.mean_ci(rho_full, **ci).as_dict(),
        "rough_ig": float(rough_ig.mean()), "rough_cam": float(rough_cam.mean()), "rough_diff": rough,
        "rougher": "IG" if rough["lo"] > 0 else "Grad-CAM" if rough["hi"] < 0 else None,
        "agree_cut": cut,
        "agreement": ("largely agree" if grid["lo"] >= cut else
                      "disagree more than they agree" if grid["hi"] < cut else
                      "agree only partly (the interval contains the cut-off)")}
    side = [[plots.Panel(x[i], "gray"), plots.Panel(ig_abs[i], "heat"),
             plots.Panel(similarity.pool(ig_abs[i:i + 1], g)[0], "heat", clip=100),
             plots.Panel(cam[i], "heat", clip=100)] for i in rp]
    res.figure("q4_side", plots.panel_grid(side, col_titles=(
        "image", "|IG|", f"|IG| pooled to {g}x{g}", "Grad-CAM"), row_titles=[f"rho {rho_grid[i]:.2f}" for i in rp],
        cell=1.5),
        f"IG and Grad-CAM side by side for the {len(rp)} report images; rho is the Spearman correlation at "
        f"the {g}x{g} Grad-CAM resolution.")


def winner_counts(faith: dict) -> dict:
    """How many of the paired IG - Grad-CAM comparisons (curve x resolution x target class)
    each method wins, and how many neither (the interval of the difference contains 0)."""
    won = [cell["IG - Grad-CAM"]["winner"] for kind in ("deletion", "insertion") if kind in faith
           for per_class in faith[kind].values() for cell in per_class.values()]
    return {"ig": won.count("IG"), "gradcam": won.count("Grad-CAM"),
            "neither": sum(w is None for w in won), "total": len(won)}


def _faithfulness(ctx: Context, model, x, target, maps: dict, st: dict, res: Result) -> None:
    """Deletion and insertion at matched resolutions, per target class, with paired intervals."""
    a = ctx.cfg.section("attribution")
    fill_name = "blurred" if a["ig_baseline"] == "train_mean" else "train_mean"
    fill = baseline_images(fill_name, x, ctx)
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    resolutions = {f"{a['faithfulness_cells']}x{a['faithfulness_cells']} cells": a["faithfulness_cells"],
                   "pixels": 0}
    curves = {}
    for rname, cells in resolutions.items():
        for m in MAPS:
            with bar(f"deletion/insertion {m}, {rname}", len(x), "img") as update:
                curves[rname, m] = deletion_insertion(model, x, maps[m], target, fill=fill, start=fill,
                                                      steps=a["faithfulness_steps"], cells=cells, progress=update)
    fr = next(iter(curves.values())).fractions
    out = {"fill": fill_name, "resolutions": list(resolutions), "level": st["level"],
           "p_fill": float(np.mean(model.predict(fill, verbose=0)[:, 1]))}
    rows = []
    for kind in ("deletion", "insertion"):
        panels = {}
        for rname in resolutions:
            for k, c in enumerate(CLASSES):
                sel = target == k
                if sel.sum() < 2:
                    continue
                auc = {m: getattr(curves[rname, m], f"{kind}_auc")[sel] for m in MAPS}
                panels[f"{rname}, target {c}"] = {m: getattr(curves[rname, m], kind)[sel] for m in MAPS}
                cell = {"n": int(sel.sum())}
                for m in MAPS:
                    cell[m] = intervals.mean_ci(auc[m], **ci).as_dict()
                for p, q in PAIRS:
                    d = intervals.bootstrap(lambda u, v: np.mean(u - v), auc[p], auc[q], **ci).as_dict()
                    d["winner"] = measures.winner(d, p, q, higher_is_better=kind == "insertion")
                    cell[f"{p} - {q}"] = d
                out.setdefault(kind, {}).setdefault(rname, {})[c] = cell
                rows.append({"curve": kind, "ranked at": rname, "target": c, "n": cell["n"],
                             **{m: _fmt(cell[m]) for m in MAPS},
                             **{f"{p} - {q}": _fmt(cell[f"{p} - {q}"]) for p, q in PAIRS}})
        res.figure(f"q4_{kind}", plots.curve_panels(fr, panels, xlabel=f"share of the image {kind.replace('ion', 'ed')}"),
                   f"{kind.capitalize()} curves (mean ± std over images) per ranking resolution and target class; "
                   f"removed pixels take the {fill_name.replace('_', ' ')} image"
                   f"{'' if kind == 'deletion' else ', which is also where insertion starts'}.")
    out["summary"] = winner_counts(out)
    res.numbers["faithfulness"] = out
    res.table("q4_faith", pd.DataFrame(rows),
              f"Areas under the deletion (lower is better) and insertion (higher is better) curves "
              f"(Petsiuk et al. 2018), mean [{st['level']:.0%} interval] over images, and paired differences.")


def _fmt(e: dict) -> str:
    return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


SECTION = Section(
    name="q4", title="Q4 Grad-CAM", run=run,
    sources=tuple(lib("gradcam", "faithfulness", "scores", "baselines", "ig") + measures.SOURCES +
                  [Path(__file__), Path(samples.__file__), Path(__file__).parent / "q3_ig.py"]),
    config=("data.", "attribution.", "verdicts."), models=("main",), after=("q3",),
    subs=(
        Sub("Q4.1", "Grad-CAM maps of the same 10 test images", "q4_1.md",
            figures=("q4_maps_normal", "q4_maps_pneumonia")),
        Sub("Q4.2", "Do the maps highlight sensible regions?", "q4_2.md", tables=("q4_regions",)),
        Sub("Q4.3", "Are the maps consistent across samples?", "q4_3.md", figures=("q4_mean",)),
        Sub("Q4.4", "Grad-CAM compared with IG", "q4_4.md",
            figures=("q4_side", "q4_deletion", "q4_insertion"), tables=("q4_faith",)),
    ))

"""Q4: Grad-CAM (tf-keras-vis, through xaikit.gradcam) and its comparison with IG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import plots, similarity
from xaikit.data import CLASSES
from xaikit.faithfulness import deletion_insertion
from xaikit.gradcam import GradcamExplainer

from . import measures, samples
from .context import Context, lib, log
from .progress import bar
from .section import Result, Section, Sub


def roughness(maps: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring pixels of each map scaled to [0, 1]."""
    out = []
    for m in similarity.to_2d(maps):
        u = similarity.unit_range(np.abs(m))
        out.append((np.abs(np.diff(u, axis=0)).mean() + np.abs(np.diff(u, axis=1)).mean()) / 2)
    return np.array(out)


def run(ctx: Context) -> Result:
    model, _ = ctx.model("main")
    a = ctx.cfg.section("attribution")
    ig = ctx.load_arrays("ig_main")
    x, y, target, probs, names = ig["inputs"], ig["labels"], ig["targets"], ig["probs"], ig["names"]
    s = samples.choose(ctx)
    rp = s.report_pos
    log(f"Grad-CAM ({a['gradcam_layer']}) for {len(x)} test images")
    explainer = GradcamExplainer(model, a["gradcam_layer"])
    cam = explainer(x, target)
    early = GradcamExplainer(model, a["gradcam_early_layer"])(x[rp], target[rp])
    ctx.save_arrays("gradcam_main", names=names, inputs=x, labels=y, targets=target, maps=cam,
                    layer=np.array(a["gradcam_layer"]))
    res = Result()
    n = res.numbers
    n["layer"] = a["gradcam_layer"]
    n["early_layer"] = a["gradcam_early_layer"]
    n["grid"] = int(model.get_layer(a["gradcam_layer"]).output.shape[1])
    n["early_grid"] = int(model.get_layer(a["gradcam_early_layer"]).output.shape[1])
    n["flat_maps"] = int(np.sum(cam.reshape(len(cam), -1).max(1) == 0))
    caps = measures.caption_rows(names[rp], y[rp], probs[rp], target[rp])
    for k, c in enumerate(CLASSES):
        rows, titles = [], []
        for j in np.flatnonzero(y[rp] == k):
            i = rp[j]
            titles.append(caps[j])
            rows.append([plots.Panel(x[i], "gray"), plots.Panel(cam[i], "heat", clip=100),
                         plots.Panel(cam[i], "overlay", under=x[i], clip=100),
                         plots.Panel(early[j], "overlay", under=x[i], clip=100)])
        res.figure(f"q4_maps_{c.lower()}", plots.panel_grid(rows, row_titles=titles, cell=1.45, col_titles=(
            "image", f"Grad-CAM {a['gradcam_layer']}", "overlay", f"overlay, {a['gradcam_early_layer']}")),
            f"Grad-CAM of the {len(rows)} {c} report images for the predicted class, at `{a['gradcam_layer']}` "
            f"({n['grid']}x{n['grid']} feature map) and at the earlier `{a['gradcam_early_layer']}` "
            f"({n['early_grid']}x{n['early_grid']}).")
    n["regions"] = measures.region_numbers(cam, ig["masks"], y)   # the masks of Q3
    res.table("q4_regions", measures.region_table(n["regions"]),
              "Share of Grad-CAM mass in the lung mask and the border zone against their area share.")
    n["consistency"] = measures.consistency_numbers(cam, y)
    res.figure("q4_mean", measures.mean_map_figure(cam, y, x, "Grad-CAM"),
               f"Mean image and mean Grad-CAM map per class over {len(x)} test images.")

    # Q4.4: IG vs Grad-CAM
    ig_abs = np.abs(similarity.to_2d(ig["attributions"]))
    g = n["grid"]
    rho_grid = similarity.pairwise(similarity.pool(ig_abs, g), similarity.pool(cam, g), similarity.spearman)
    rho_full = similarity.pairwise(ig_abs, cam, similarity.spearman)
    rough_ig, rough_cam = roughness(ig_abs), roughness(cam)
    n["compare"] = {"spearman_grid": similarity.summarize(rho_grid).__dict__,
                    "spearman_full": similarity.summarize(rho_full).__dict__,
                    "rough_ig": float(rough_ig.mean()), "rough_cam": float(rough_cam.mean()),
                    "agree": bool(rho_grid.mean() >= 0.5)}
    side = [[plots.Panel(x[i], "gray"), plots.Panel(ig_abs[i], "heat"),
             plots.Panel(similarity.pool(ig_abs[i:i + 1], g)[0], "heat", clip=100),
             plots.Panel(cam[i], "heat", clip=100)]
            for i in rp]
    titles = [f"rho {rho_grid[i]:.2f}" for i in rp]
    res.figure("q4_side", plots.panel_grid(side, col_titles=(
        "image", "|IG|", f"|IG| pooled to {g}x{g}", "Grad-CAM"), row_titles=titles, cell=1.5),
        f"IG and Grad-CAM side by side for the {len(rp)} report images; rho is the Spearman correlation at "
        f"the {g}x{g} Grad-CAM resolution.")
    log(f"deletion/insertion curves for {len(x)} images x 3 maps")
    rng = np.random.default_rng(a["seed"])
    rand = rng.uniform(size=cam.shape)
    curves = {}
    for name, maps in (("IG", similarity.to_2d(ig["attributions"])), ("Grad-CAM", cam), ("random", rand)):
        with bar(f"deletion/insertion {name}", len(x), "img") as update:
            curves[name] = deletion_insertion(model, x, maps, target, steps=a["faithfulness_steps"],
                                              blur_sigma=a["blur_sigma"] * x.shape[1] / 128,
                                              progress=update)
    fr = curves["IG"].fractions
    res.figure("q4_deletion", plots.mean_curves(fr, {k: v.deletion for k, v in curves.items()},
                                                title="deletion (lower is better)",
                                                xlabel="share of pixels removed"),
               "Deletion curves: P(target) as the highest-ranked pixels are set to 0 (mean ± std).")
    res.figure("q4_insertion", plots.mean_curves(fr, {k: v.insertion for k, v in curves.items()},
                                                 title="insertion (higher is better)",
                                                 xlabel="share of pixels inserted"),
               "Insertion curves: P(target) as the highest-ranked pixels are put into a blurred copy.")
    faith = {k: {"deletion": similarity.summarize(v.deletion_auc).__dict__,
                 "insertion": similarity.summarize(v.insertion_auc).__dict__} for k, v in curves.items()}
    n["faithfulness"] = faith
    n["best_deletion"] = min(faith, key=lambda k: faith[k]["deletion"]["mean"])
    n["best_insertion"] = max(faith, key=lambda k: faith[k]["insertion"]["mean"])
    n["beats_random"] = {k: bool(faith[k]["deletion"]["mean"] < faith["random"]["deletion"]["mean"] and
                                 faith[k]["insertion"]["mean"] > faith["random"]["insertion"]["mean"])
                         for k in ("IG", "Grad-CAM")}
    res.table("q4_faith", pd.DataFrame([
        {"map": k, "deletion AUC": v["deletion"]["mean"], "± std": v["deletion"]["std"],
         "insertion AUC": v["insertion"]["mean"], "± std ": v["insertion"]["std"], "images": v["deletion"]["n"]}
        for k, v in faith.items()]),
        "Areas under the deletion and insertion curves (Petsiuk et al. 2018), mean ± std over images.")
    return res


SECTION = Section(
    name="q4", title="Q4 Grad-CAM", run=run,
    sources=tuple(lib("gradcam", "faithfulness") + measures.SOURCES +
                  [Path(__file__), Path(samples.__file__)]),
    config=("data.", "attribution."), models=("main",), after=("q3",),
    subs=(
        Sub("Q4.1", "Grad-CAM maps of the same 10 test images", "q4_1.md",
            figures=("q4_maps_normal", "q4_maps_pneumonia")),
        Sub("Q4.2", "Do the maps highlight sensible regions?", "q4_2.md", tables=("q4_regions",)),
        Sub("Q4.3", "Are the maps consistent across samples?", "q4_3.md", figures=("q4_mean",)),
        Sub("Q4.4", "Grad-CAM compared with IG", "q4_4.md",
            figures=("q4_side", "q4_deletion", "q4_insertion"), tables=("q4_faith",)),
    ))

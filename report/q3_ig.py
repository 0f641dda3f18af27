"""Q3: Integrated Gradients on the main model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import baselines as xb
from xaikit import plots, similarity
from xaikit.data import CLASSES
from xaikit.ig import integrated_gradients_adaptive, integrated_gradients_expected
from xaikit.model import logits_model
from xaikit.pipeline import to_float
from xaikit.train import predict_probs

from . import measures, samples
from .context import Context, lib, log
from .progress import bar
from .section import Result, Section, Sub


def baseline_images(name: str, x: np.ndarray, ctx: Context) -> np.ndarray:
    """Baseline array for images ``x``: N x H x W x C, or k x N x ... for noise."""
    a = ctx.cfg.section("attribution")
    if name == "black":
        return xb.black(x)
    if name == "white":
        return xb.white(x)
    if name == "blurred":
        return xb.blurred(x, a["blur_sigma"] * x.shape[1] / 128)
    if name == "noise":
        return xb.uniform_noise(x, a["noise_draws"], a["seed"])
    if name == "train_mean":
        return xb.train_mean(x, to_float(ctx.prepared().x("train")).mean(0))
    raise ValueError(f"baseline expects one of {xb.BASELINES}, got {name!r}")


def explain_ig(ctx: Context, model, x: np.ndarray, target: np.ndarray, baseline: str,
               adaptive: bool = True, b: np.ndarray | None = None):
    """IG of the logit of ``target`` with the named baseline (steps doubled where the
    completeness gap exceeds the tolerance, unless ``adaptive`` is False). ``b``: the
    baseline images when the caller already made them."""
    a = ctx.cfg.section("attribution")
    b = baseline_images(baseline, x, ctx) if b is None else b
    draws = len(b) if baseline == "noise" else 1
    with bar(f"IG {baseline}", draws * len(x) * (a["ig_steps"] + 1), "pts") as update:
        if baseline == "noise":
            return integrated_gradients_expected(model, x, b, target, steps=a["ig_steps"],
                                                 batch_size=a["ig_batch_size"], progress=update)
        return integrated_gradients_adaptive(
            model, x, b, target, steps=a["ig_steps"], tolerance=a["ig_tolerance"],
            max_steps=a["ig_max_steps"] if adaptive else a["ig_steps"],
            batch_size=a["ig_batch_size"], progress=update)


def run(ctx: Context) -> Result:
    model, _ = ctx.model("main")
    logits = logits_model(model)
    p = ctx.prepared()
    a = ctx.cfg.section("attribution")
    s = samples.choose(ctx)
    x = to_float(p.images[s.eval_idx])
    y = p.labels[s.eval_idx]
    probs = predict_probs(model, x)
    target = (probs >= 0.5).astype(int)       # explain the predicted class
    names = p.names[s.eval_idx]
    log(f"IG ({a['ig_baseline']} baseline) for {len(x)} test images")
    ig = explain_ig(ctx, logits, x, target, a["ig_baseline"])
    masks = measures.masks_for(x)
    ctx.save_arrays("ig_main", names=names, inputs=x, labels=y, targets=target, probs=probs,
                    attributions=ig.attributions, gaps=ig.gap, f_image=ig.f_image,
                    f_baseline=ig.f_baseline, baseline=np.array(a["ig_baseline"]), masks=masks)
    res = Result()
    n = res.numbers
    rp = s.report_pos
    n["rule"] = samples.rule(ctx)
    n["baseline"] = a["ig_baseline"]
    n["steps"] = a["ig_steps"]
    n["max_steps"] = ig.steps
    n["tolerance"] = a["ig_tolerance"]
    n["target_rule"] = "the predicted class (P(PNEUMONIA) >= 0.5 means PNEUMONIA)"
    n["report_images"] = [{"name": str(nm), "label": CLASSES[yy], "p_pneumonia": float(pp),
                           "misclassified": bool((pp >= 0.5) != (yy == 1)), "gap": float(g)}
                          for nm, yy, pp, g in zip(names[rp], y[rp], probs[rp], ig.gap[rp])]
    n["n_report"] = int(len(rp))
    n["heat_clip"] = 99
    n["report_misclassified"] = int(sum(r["misclassified"] for r in n["report_images"]))
    n["gap_report_max"] = float(ig.gap[rp].max())
    n["gap_median"] = float(np.median(ig.gap))
    n["gap_over_tol"] = int(np.sum(ig.gap > a["ig_tolerance"]))
    n["n_eval"] = int(len(x))
    delta = np.abs(ig.f_image - ig.f_baseline)
    over = ig.gap > a["ig_tolerance"]
    n["delta_median"] = float(np.median(delta))
    n["delta_median_over_tol"] = float(np.median(delta[over])) if over.any() else 0.0
    caps = measures.caption_rows(names[rp], y[rp], probs[rp], target[rp])
    for k, c in enumerate(CLASSES):
        rows, titles = [], []
        for j in np.flatnonzero(y[rp] == k):
            i = rp[j]
            titles.append(caps[j] + f"\ngap {ig.gap[i]:.2%}")
            rows.append([plots.Panel(x[i], "gray"),
                         plots.Panel(ig.attributions[i], "heat"),
                         plots.Panel(ig.attributions[i], "signed"),
                         plots.Panel(ig.attributions[i], "overlay", under=x[i])])
        res.figure(f"q3_maps_{c.lower()}", plots.panel_grid(
            rows, row_titles=titles, col_titles=("image", "|IG|", "signed IG (red +, blue -)", "overlay"),
            cell=1.45),
            f"IG maps of the {len(rows)} {c} report images (target: predicted class, {a['ig_baseline']} "
            "baseline). Captions: file, true label, P(PNEUMONIA), target, completeness gap.")
    n["regions"] = measures.region_numbers(ig.attributions, masks, y)
    res.figure("q3_masks", measures.mask_figure(x[rp], masks[rp]),
               "Heuristic lung masks (green contours) of the report images, and the border zone.")
    n["consistency"] = measures.consistency_numbers(ig.attributions, y)
    res.figure("q3_mean", measures.mean_map_figure(ig.attributions, y, x, "|IG|"),
               f"Mean image and mean |IG| map per class over {len(x)} test images.")
    _baselines(ctx, logits, model, x[rp], target[rp], res)
    res.table("q3_regions", measures.region_table(n["regions"]),
              "Share of |attribution| in the lung mask and the border zone against their area share.")
    return res


def _baselines(ctx: Context, logits, model, x, target, res: Result) -> None:
    names = xb.BASELINES
    maps, rows = {}, []
    for name in names:
        b = baseline_images(name, x, ctx)
        r = explain_ig(ctx, logits, x, target, name, b=b)
        maps[name] = r.attributions
        pb = np.mean([predict_probs(model, bb) for bb in (b if b.ndim == 5 else [b])], axis=0)
        rows.append({"baseline": name, "P(PNEUMONIA) of baseline": float(pb.mean()),
                     "F(x) - F(baseline)": float(np.mean(r.f_image - r.f_baseline)),
                     "|F(x) - F(baseline)|, min": float(np.min(np.abs(r.f_image - r.f_baseline))),
                     "median gap": float(np.median(r.gap)), "max gap": float(np.max(r.gap))})
    ctx.save_arrays("ig_baselines", targets=target, inputs=x,
                    **{f"attr_{k}": v for k, v in maps.items()})
    spear = np.zeros((len(names), len(names)))
    ssim = np.zeros_like(spear)
    for i, bi in enumerate(names):
        for j, bj in enumerate(names):
            a2, b2 = np.abs(similarity.to_2d(maps[bi])), np.abs(similarity.to_2d(maps[bj]))
            spear[i, j] = similarity.pairwise(a2, b2, similarity.spearman).mean()
            ssim[i, j] = similarity.pairwise(a2, b2, similarity.ssim).mean()
    table = pd.DataFrame(rows)
    res.table("q3_baselines", table, "Baselines: the model's P(PNEUMONIA) for the baseline image, the "
              f"explained logit difference and the completeness gap, over the {len(x)} report images.")
    grid = [[plots.Panel(x[i], "gray")] + [plots.Panel(maps[b][i], "heat") for b in names]
            for i in range(len(x))]
    res.figure("q3_baseline_grid", plots.panel_grid(grid, col_titles=("image",) + names, cell=1.25),
               f"|IG| of the {len(x)} report images for each baseline (rows: NORMAL first, then PNEUMONIA).")
    fig = plots.matrix(spear, names, title="Spearman of |IG|")
    res.figure("q3_baseline_spearman", fig, "Mean Spearman correlation of |IG| maps between baselines.")
    res.figure("q3_baseline_ssim", plots.matrix(ssim, names, title="SSIM of |IG|", vmin=0),
               "Mean SSIM of |IG| maps between baselines.")
    off = ~np.eye(len(names), dtype=bool)
    n = res.numbers
    n["baselines"] = {r["baseline"]: {"p_baseline": r["P(PNEUMONIA) of baseline"],
                                      "delta": r["F(x) - F(baseline)"],
                                      "median_gap": r["median gap"], "max_gap": r["max gap"]} for r in rows}
    n["baseline_spearman_mean"] = float(spear[off].mean())
    n["baseline_ssim_mean"] = float(ssim[off].mean())
    i, j = np.unravel_index(np.argmin(np.where(off, spear, np.inf)), spear.shape)
    n["baseline_least_similar"] = [names[i], names[j], float(spear[i, j])]
    n["baseline_black_p"] = n["baselines"]["black"]["p_baseline"]
    n["baseline_sensitive"] = bool(n["baseline_spearman_mean"] < 0.5)
    # any constant image standardises to the same all-zero input inside the model
    bl, wh = n["baselines"]["black"], n["baselines"]["white"]
    n["constant_baselines_equal"] = bool(abs(bl["p_baseline"] - wh["p_baseline"]) < 1e-4)
    n["black_gap_problem"] = bool(bl["median_gap"] > ctx.cfg["attribution.ig_tolerance"])


SECTION = Section(
    name="q3", title="Q3 Integrated Gradients", run=run,
    sources=tuple(lib("ig", "baselines", "model", "train") + measures.SOURCES +
                  [Path(__file__), Path(samples.__file__), Path(__file__).parent / "progress.py"]),
    config=("data.", "attribution."), models=("main",),
    subs=(
        Sub("Q3.1", "IG maps of 5 NORMAL and 5 PNEUMONIA test images", "q3_1.md",
            figures=("q3_maps_normal", "q3_maps_pneumonia")),
        Sub("Q3.2", "Do the maps highlight sensible regions?", "q3_2.md",
            figures=("q3_masks",), tables=("q3_regions",)),
        Sub("Q3.3", "Are the maps consistent across samples?", "q3_3.md", figures=("q3_mean",)),
        Sub("Q3.4", "The effect of the baseline", "q3_4.md",
            figures=("q3_baseline_grid", "q3_baseline_spearman", "q3_baseline_ssim"),
            tables=("q3_baselines",)),
    ))

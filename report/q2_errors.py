"""Q2.3: where the classifier errs, and what IG and Grad-CAM look at on its errors.

Every choice is fixed before the build computes it: the threshold is the main model's validation
threshold; the explained errors and the figure rows are drawn by ``attribution.seed`` (named
offsets below); each error is compared with a correctly classified image of the class it was
*called* (the same explained target), the nearest in P(PNEUMONIA) (xaikit.misclassified.
match_same_decision); a comparison with fewer than ``verdicts.min_errors`` errors says "cannot
tell"; the file-name families come from the training split's names; the image statistics are
listed here. Test labels only describe the errors; they choose nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import eda, misclassified as mc, plots, regions, similarity
from xaikit.data import CLASSES
from xaikit.pipeline import to_float
from xaikit.train import predict_probs

from . import measures
from .context import Context, log
from . import maps as store
from .maps import baseline_images, cam_layers
from .section import Result

# Caps and the family cut-off come from the config: attribution.errors_per_class (errors per true class that
# get IG and Grad-CAM, and as many matched correct images), attribution.errors_figure_per_class (errors per
# true class in the figure) and verdicts.family_min_train (training files a file-name family needs).
SEED_OFFSETS = {"explained": 0, "figure": 2}   # offsets of attribution.seed per choice (the matches: nearest P)
STATISTICS = {             # label-free image statistics, fixed here before the build computes them
    "sharpness": "sharpness",  # variance of the Laplacian at the build's image size (as Q1.2)
    "intensity": "mean intensity",
    "file_kb": "file size",
    "width": "original width",
    "height": "original height",
}
MAPS = ("IG", "Grad-CAM")
REGIONS = ("lung", "border")


def _statistics(ctx: Context, idx: np.ndarray) -> dict[str, np.ndarray]:
    p = ctx.prepared()
    nbytes = {r.relpath: r.nbytes for r in ctx.listing.records}
    return {"sharpness": eda.sharpness(p.images[idx]),
            "intensity": p.images[idx].reshape(len(idx), -1).mean(1) / 255.0,
            "file_kb": np.array([nbytes.get(str(nm), np.nan) for nm in p.names[idx]], float) / 1024,
            "width": p.width[idx].astype(float), "height": p.height[idx].astype(float)}


def run(ctx: Context, model, card: dict, res: Result) -> None:
    """Adds q2.errors, the Q2.3 figure and tables to ``res``."""
    t0 = time.perf_counter()
    p = ctx.prepared()
    st = measures.settings(ctx)
    a = ctx.cfg.section("attribution")
    seed, level = int(a["seed"]), st["level"]
    thr = float(card["val_threshold"])
    test = p.idx("test")
    x_all, y, names = to_float(p.images[test]), p.labels[test], p.names[test]
    probs = predict_probs(model, x_all)
    cam_layer = cam_layers(ctx, model)
    methods = MAPS if cam_layer.layer else ("IG",)        # no conv layer: Grad-CAM is skipped
    s = _sample(y, probs, thr, a["errors_per_class"], seed)
    n = res.numbers["errors"] = {
        "threshold": thr, "seed": seed, "offsets": SEED_OFFSETS, "explain_cap": a["errors_per_class"],
        "figure_cap": a["errors_figure_per_class"], "family_min_train": st["family_min_train"], "level": level,
        "min_errors": st["min_errors"],
        "baseline": a["ig_baseline"], "layer": cam_layer.layer, "methods": list(methods),
        "cam_skipped": cam_layer.reason or None, "border_frac": st["border_frac"],
        "has_layer": cam_layer.layer is not None, "is_cam_skipped": bool(cam_layer.reason),
        "methods_or": " or ".join(methods), "methods_and": " and ".join(methods),
        "n_test": int(len(y)), "fp": int(len(s.errors[0])), "fn": int(len(s.errors[1])),
        "counts": {c: {"n": int(np.sum(y == k)), "errors": int(len(s.errors[k])),
                       "explained": int(len(s.explained[k])),
                       "all_explained": bool(len(s.explained[k]) == len(s.errors[k]))}
                   for k, c in enumerate(CLASSES)}}

    # IG and Grad-CAM of the explained errors and their matched correct images
    pick = np.concatenate([s.explained[0], s.matched[0], s.explained[1], s.matched[1]]).astype(int)
    maps = {}
    if len(pick):
        x = x_all[pick]
        target = mc.decide(probs[pick], thr)
        log(f"Q2.3: {' and '.join(methods)} for {len(pick)} test images (errors and matched correct ones)")
        ig = store.get(ctx, "main", "ig", a["ig_baseline"], x, target)
        pos = {int(i): j for j, i in enumerate(pick)}
        maps = {"IG": np.abs(similarity.to_2d(ig.attributions))}
        if cam_layer.layer:
            maps["Grad-CAM"] = np.asarray(store.get(ctx, "main", "gradcam", cam_layer.layer, x, target).maps, np.float64)
        n["ig_gap_median"] = float(np.median(ig.gap))
        b = baseline_images(a["ig_baseline"], x, ctx)
        maps["input"] = np.abs(similarity.to_2d(x - (b.mean(0) if b.ndim == 5 else b)))   # the input alone
    rows = _mass(n, s, maps, pick, ctx, st, methods)
    res.table("q2_errors_maps", pd.DataFrame(rows),
              f"Share of {' and of '.join(('|IG|',) + (('Grad-CAM',) if cam_layer.layer else ()))} in the lung mask (atlas) and in the border zone on the explained errors "
              f"and on as many correctly classified test images of the class they were called (the same explained "
              f"target), each the nearest in P(PNEUMONIA) to its error; the difference errors - correct "
              f"({level:.0%} bootstrap intervals, images resampled within each group) and its word (\"cannot tell\" "
              f"with fewer than {st['min_errors']} errors), and the same difference for the input alone "
              f"(|x - baseline|, the {a['ig_baseline']} baseline), which carries nothing of the model.")
    if len(pick):
        _figure(res, s, maps, pos, x_all, y, probs, names, seed, thr, a, cam_layer.layer)
    else:
        res.figure("q2_errors", plots.message(f"No test image is misclassified at the validation threshold {thr:.3f}: "
                                              "there is no error to show."),
                   "Errors at the validation threshold: none on this test split.")
    _common(n, res, ctx, test, y, probs, thr, st)
    n["seconds"] = time.perf_counter() - t0


def _sample(y: np.ndarray, probs: np.ndarray, thr: float, cap: int, seed: int) -> mc.ErrorSample:
    """Up to ``cap`` errors per true class (seeded), each with its correct image of the called class."""
    bad = mc.wrong(y, probs, thr)
    pools = {k: np.flatnonzero(bad & (y == k)) for k in (0, 1)}
    return mc.match_same_decision(y, probs, thr, {k: mc.seeded_choice(pools[k], min(cap, len(pools[k])), seed,
                                                                        SEED_OFFSETS["explained"]) for k in (0, 1)})


def _mass(n: dict, s: mc.ErrorSample, maps: dict, pick: np.ndarray, ctx: Context, st: dict,
          methods: tuple = MAPS) -> list:
    """Lung and border shares of the maps (and of the input alone) on errors vs correct. (A spatial
    prior, the mean map of the other images of a group, is no reference here: with one lung mask for
    every image its mean share equals the group's own, so its difference would repeat the maps'.)"""
    size = ctx.cfg["data.image_size"]
    masks = {"lung": measures.atlas(size), "border": regions.border_zone((size, size), st["border_frac"])}
    pos = {int(i): j for j, i in enumerate(pick)}
    ci = dict(n_boot=st["n_boot"], seed=st["seed"], level=st["level"])
    out, rows = {}, []
    for k, c in enumerate(CLASSES):
        out[c] = {"called": CLASSES[1 - k]}
        groups = {"errors": [pos[int(i)] for i in s.explained[k]], "correct": [pos[int(i)] for i in s.matched[k]]}
        for m in methods:
            out[c][m] = {}
            for r in REGIONS:
                sh, null = {}, {}
                for g, rows_g in groups.items():
                    mm = maps[m][rows_g] if len(rows_g) else np.zeros((0, size, size))
                    sh[g] = regions.image_shares(mm, masks[r]) if len(rows_g) else np.zeros(0)
                    null[g] = (regions.image_shares(maps["input"][rows_g], masks[r]) if len(rows_g)
                               else np.zeros(0))
                enough = len(groups["errors"]) >= st["min_errors"]      # verdicts.min_errors
                d = mc.diff_means(sh["errors"], sh["correct"], **ci) if enough else None
                dn = mc.diff_means(null["errors"], null["correct"], **ci) if enough else None
                e = {"n": len(groups["errors"]),
                     "errors": float(sh["errors"].mean()) if len(sh["errors"]) else None,
                     "correct": float(sh["correct"].mean()) if len(sh["correct"]) else None,
                     "diff": d.as_dict() if d else None, "input_diff": dn.as_dict() if dn else None,
                     "word": mc.direction(d), "input_word": mc.direction(dn)}
                e["told"] = e["word"] != "cannot tell"
                if not enough:
                    e["word"] = f"cannot tell ({e['n']} errors, at least {st['min_errors']} needed)"
                out[c][m][r] = e
                rows.append({"true class": c, "called": CLASSES[1 - k], "map": m, "region": r, "n": e["n"],
                             "share, errors": _f(e["errors"]), "share, correct": _f(e["correct"]),
                             "errors - correct": _ci(d), "word": e["word"], "input alone: errors - correct": _ci(dn)})
    n["maps"] = out
    # the answer's first sentence: "differently" when any interval (class, map, region) excludes 0
    words = [out[c][m][r]["word"] if out[c][m][r]["told"] else "cannot tell"
             for c in CLASSES for m in methods for r in REGIONS]
    n["maps_verdict"] = ("differently" if {"more", "less"} & set(words) else
                         "cannot tell" if set(words) == {"cannot tell"} else "no differently")
    n["maps_says"] = measures.says(n["maps_verdict"], ("differently", "no differently", "cannot tell"))
    n["maps_differ"] = sum(w in ("more", "less") for w in words)     # of n["maps_compared"] comparisons
    n["maps_compared"] = sum(w != "cannot tell" for w in words)
    return rows


def _g(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3g}"


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(e) -> str:
    return "-" if e is None else f"{e.value:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def _figure(res: Result, s: mc.ErrorSample, maps: dict, pos: dict, x, y, probs, names, seed, thr, a,
            layer: str | None) -> None:
    rows = []
    for k, c in enumerate(CLASSES):
        j = mc.seeded_choice(np.arange(len(s.explained[k])), min(a["errors_figure_per_class"], len(s.explained[k])),
                             seed, SEED_OFFSETS["figure"])
        for t in np.sort(j):
            row = []
            for i in (int(s.explained[k][t]), int(s.matched[k][t])):
                q = pos[i]
                title = f"{Path(str(names[i])).name}: {CLASSES[y[i]]}, P(pn)={probs[i]:.2f}"
                row += [plots.Panel(maps["IG"][q], "overlay", title, under=x[i])]
                if layer:
                    row += [plots.Panel(maps["Grad-CAM"][q], "overlay", under=x[i], clip=100)]
            rows.append(row)
    res.figure("q2_errors", plots.panel_grid(rows, col_titles=(
        ("error: |IG|", "error: Grad-CAM", "correct: |IG|", "correct: Grad-CAM") if layer else
        ("error: |IG|", "correct: |IG|"))),
        f"Errors at the validation threshold {thr:.3f} (left pair; up to {a['errors_figure_per_class']} per true class, "
        f"seeded) beside a correctly classified test image of the class it was called (right pair; the nearest "
        f"in P(PNEUMONIA), so both explain the same class at a similar confidence): |IG| ({a['ig_baseline']} baseline, to its 99th percentile)"
        + (f" and Grad-CAM ({layer}, to its maximum)" if layer else "") + " of the decided class, each overlaid on "
        "the image. Rows: NORMAL images called PNEUMONIA first, then PNEUMONIA images called NORMAL. Titles: file, "
        "true label, P(PNEUMONIA).")


def _statistic_screen(stats_: dict, y, probs, bad, fam_test, st: dict, level: float) -> tuple[dict, list, list]:
    """Q2.3's screen of the label-free statistics, per true class: whether each sets the errors apart from the
    correct images of their class within file-name families (:func:`xaikit.misclassified.within_family_auc`,
    the test that decides what the errors share), beside its Spearman correlation with P(PNEUMONIA) (descriptive)."""
    corr, shared, rows = {}, [], []
    for k, c in enumerate(CLASSES):
        sel = y == k
        corr[c] = {}
        for key, label in STATISTICS.items():
            v = stats_[key][sel]
            ok = np.isfinite(v)
            e = mc.rank_correlation(v[ok], probs[sel][ok], n_boot=st["n_boot"], seed=st["seed"], level=level)
            w = mc.correlation_word(e)
            a = mc.within_family_auc(v[ok], bad[sel][ok], fam_test[sel][ok], n_boot=st["n_boot"], seed=st["seed"],
                                     level=level)
            aw = mc.error_word(a)
            corr[c][key] = {**e.as_dict(), "word": w, "label": label,
                            "says": measures.says(w, ("none", "negative", "positive", "cannot tell")),
                            "errors_vs_correct": {**a.as_dict(), "word": aw},
                            "median_errors": float(np.nanmedian(v[bad[sel]])) if bad[sel].any() else None,
                            "median_correct": float(np.nanmedian(v[~bad[sel]])) if (~bad[sel]).any() else None}
            if aw in ("higher", "lower"):
                shared.append({"kind": "statistic", "statistic": True, "class": c, "what": label, "direction": aw})
            me, mc_ = corr[c][key]["median_errors"], corr[c][key]["median_correct"]
            rows.append({"true class": c, "measure": f"{label}: errors vs correct, within family", "n": a.n,
                         "value [CI]": _ci(a) if np.isfinite(a.value) else "-", "word": aw,
                         "median, errors | correct": f"{_g(me)} | {_g(mc_)}"})
            rows.append({"true class": c, "measure": f"{label}: Spearman with P(PNEUMONIA)", "n": e.n,
                         "value [CI]": _ci(e) if np.isfinite(e.value) else "-", "word": w,
                         "median, errors | correct": "-"})
    return corr, shared, rows


def _common(n: dict, res: Result, ctx: Context, test, y, probs, thr, st) -> None:
    """Label-free statistics and file-name families against P(PNEUMONIA) and the errors."""
    p = ctx.prepared()
    bad = mc.wrong(y, probs, thr)
    stats_ = _statistics(ctx, test)
    m_corr = len(STATISTICS) * len(CLASSES)
    train_names = p.names[p.idx("train")]
    fams = mc.families(train_names, st["family_min_train"])
    fam_test = mc.family_of(p.names[test], fams)
    cells = sum(len(set(fam_test[y == k].tolist())) for k in range(len(CLASSES)))
    # a screen over many measures: simultaneous (Bonferroni) intervals at 1 - alpha overall
    lvl_corr = 1 - st["alpha"] / m_corr
    lvl_fam = 1 - st["alpha"] / max(1, cells)
    n["screen"] = {"alpha": st["alpha"], "n_correlations": m_corr, "level_correlations": lvl_corr, "n_families": cells,
                   "level_families": lvl_fam, "families": list(fams), "families_text": ", ".join(fams)}
    corr, shared, rows = _statistic_screen(stats_, y, probs, bad, fam_test, st, lvl_corr)
    fam = {}
    for k, c in enumerate(CLASSES):
        sel = y == k
        fam[c] = mc.family_rates(fam_test[sel], bad[sel], lvl_fam)
        for f, e in fam[c].items():
            if e["word"] == "more":
                shared.append({"kind": "family", "statistic": False, "class": c, "what": f, "direction": "more often wrong"})
            r, vs = e["rate"], e["vs_rest"]
            rows.append({"true class": c, "measure": f"family {f} (error rate)", "n": e["n"],
                         "value [CI]": f"{r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({e['errors']} errors)",
                         "word": e["word"] if vs else "-", "median, errors | correct": "-"})
    n["correlations"] = corr
    const = sorted({STATISTICS[k] for c in CLASSES for k, e in corr[c].items() if e["word"] == "cannot tell"},
                   key=list(STATISTICS.values()).index)
    n["constant_statistics"], n["any_constant"] = const, bool(const)
    n["constant_statistics_text"] = ", ".join(const)
    n["families"] = fam
    n["shared"] = shared
    n["shares_something"] = bool(shared)
    res.table("q2_errors_common", pd.DataFrame(rows),
              f"What the wrongly called test images share, per true class, from what is known without labels. "
              f"Value: for each image statistic, P(an error's value > a correct image's value of the same file-name "
              f"family) (Mann-Whitney, pooled over the families that hold both; 0.5 = the statistic does not set the "
              f"errors apart; this decides what the errors share; medians on errors and on correct images beside it), "
              f"and its Spearman correlation with P(PNEUMONIA) over all test images of the class (descriptive); bootstrap "
              f"intervals, simultaneous over {m_corr} statistic cells (Bonferroni); or the error rate per file-name family "
              f"(families from the training names; Wilson intervals, simultaneous over {cells} family cells; the word compares a family with the rest of its class, Newcombe interval).")

"""Q1: the data. Label distribution, examples, visible differences, bias, preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import eda, intervals, plots
from xaikit.data import CLASSES, kaggle_val_leaks, patient_id
from xaikit.train import class_weight_vector

from . import sources
from .context import Context
from .section import Appendix, Result, Section, Sub
from .words import says


def run(ctx: Context) -> Result:
    cfg, p = ctx.cfg, ctx.prepared()
    res = Result()
    n = res.numbers
    n.update(_label_distribution(res, cfg, p, ctx.listing))       # Q1.1
    _examples(res, cfg, p)
    n["visible"] = _visible(res, cfg, p)                          # Q1.2
    n["bias"] = _bias(res, ctx, p, n["counts"], n["visible"])     # Q1.3
    n["preprocessing"] = _preprocessing(cfg, p)                   # Q1.4
    return res


def _label_distribution(res: Result, cfg, p, listing) -> dict:
    """Q1.1's numbers on the label distribution (counts per split and class, files left out), table and figure q1_counts."""
    splits = [s for s in ("train", "val", "test") if len(p.idx(s))]
    counts = {s: {c: int(np.sum((p.split == s) & (p.labels == k))) for k, c in enumerate(CLASSES)}
              for s in splits}
    on_disk = {s: {c: int(sum(1 for r in listing.records if r.split == s and r.label == k))
                   for k, c in enumerate(CLASSES)}
               for s in ("train", "val", "test") if any(r.split == s for r in listing.records)}
    n = {}
    n["counts"] = counts
    n["on_disk"] = on_disk
    n["total"] = int(len(p.labels))
    n["pct"] = {s: {c: counts[s][c] / max(1, sum(counts[s].values())) for c in CLASSES} for s in splits}
    n["imbalance_ratio"] = counts["train"]["PNEUMONIA"] / max(1, counts["train"]["NORMAL"])
    n["balanced"] = bool(counts["train"]["PNEUMONIA"] == counts["train"]["NORMAL"])   # e.g. capped by data.max_per_class
    n["kaggle_val_present"] = "val" in on_disk
    n["kaggle_val"] = kaggle_val_numbers(p.source_split, p.split, p.names, cfg["data.use_kaggle_val"])
    n["ignored_files"] = len(listing.ignored)
    n["skipped_files"] = len(listing.empty) + len(p.failed)
    n["any_files_left_out"] = bool(n["ignored_files"] or n["skipped_files"])
    n["capped"] = bool(cfg["data.max_per_class"])       # data.max_per_class caps every split and class
    n["val_fraction"] = cfg["data.val_fraction"]
    rows = [{"split": s, **counts[s], "total": sum(counts[s].values()),
             "% PNEUMONIA": 100 * n["pct"][s]["PNEUMONIA"]} for s in splits]
    res.table("q1_counts", pd.DataFrame(rows),
              "Images per split and class as used (validation carved out of train/ by patient).")
    res.figure("q1_counts", plots.bar_counts(counts), "Images per split and class.")
    return n


def _examples(res: Result, cfg, p) -> None:
    """Q1.1's figure q1_examples: random training images per class (seeded by data.seed)."""
    rng = np.random.default_rng(cfg["data.seed"])
    per = plots.MAX_COLS   # one row of full-size panels per class
    grid = []
    for k, cls in enumerate(CLASSES):
        pool = np.flatnonzero((p.split == "train") & (p.labels == k))
        idx = rng.choice(pool, min(per, len(pool)), replace=False)   # tiny datasets have fewer
        grid.append([plots.Panel(p.images[i] / 255.0, "gray", Path(str(p.names[i])).name)
                     for i in idx])
    res.figure("q1_examples", plots.panel_grid(grid, row_titles=CLASSES),
               f"Random training images (seed {cfg['data.seed']}), top row NORMAL, bottom row "
               "PNEUMONIA, with file names.")


def _visible(res: Result, cfg, p) -> dict:
    """Q1.2's numbers (numbers["visible"]) and figures q1_means, q1_hist and q1_sharp: how the classes differ."""
    train, test = p.idx("train"), p.idx("test")
    x = p.images[train].astype(np.float64) / 255.0
    y = p.labels[train]
    diff = _mean_images(res, x, y)
    intensity = {c: x[y == k].mean(axis=(1, 2)) for k, c in enumerate(CLASSES)}
    res.figure("q1_hist", plots.histograms({c: x[y == k][:, ::4, ::4] for k, c in enumerate(CLASSES)},
                                           xlabel="pixel intensity (0-1)"),
               "Pixel intensity histograms per class (training images).")
    sharp = eda.sharpness(p.images[train])
    sharp_test = eda.sharpness(p.images[test])
    visible = {
        "mean_intensity": {c: float(v.mean()) for c, v in intensity.items()},
        "std_intensity": {c: float(v.std()) for c, v in intensity.items()},
        "diff_center": float(_central_half(np.abs(diff))), "diff_all": float(np.abs(diff).mean()),
        "diff_max": float(diff.max()), "diff_min": float(diff.min()),
        **_directions(cfg, x, y, intensity, sharp),
        "sharpness_train": {c: float(np.median(sharp[y == k])) for k, c in enumerate(CLASSES)},
        "sharpness_test": {c: float(np.median(sharp_test[p.labels[test] == k]))
                           for k, c in enumerate(CLASSES)},
        # without labels: the whole train and test splits (what a user could check on unlabeled data)
        "sharpness_unlabeled": {"train": float(np.median(sharp)), "test": float(np.median(sharp_test))},
    }
    res.figure("q1_sharp", plots.histograms(
        {f"{s} {c}": np.log10(1 + v[lab == k]) for s, v, lab in
         (("train", sharp, y), ("test", sharp_test, p.labels[test])) for k, c in enumerate(CLASSES)},
        xlabel="log10(1 + variance of the Laplacian)", bins=40),
        "Image sharpness (variance of the Laplacian) per split and class.")
    return visible


def _mean_images(res: Result, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Q1.2's figure q1_means: the per-class mean training images; returns their difference (PNEUMONIA - NORMAL)."""
    means = [x[y == k].mean(0) for k in (0, 1)]
    diff = means[1] - means[0]
    res.figure("q1_means", plots.panel_grid([[
        plots.Panel(means[0], "gray", "mean NORMAL"), plots.Panel(means[1], "gray", "mean PNEUMONIA"),
        plots.Panel(diff, "signed", "PNEUMONIA - NORMAL")]], cell=2.1),
        "Per-class mean training image and their difference (red: brighter in PNEUMONIA).")
    return diff


def _directions(cfg, x: np.ndarray, y: np.ndarray, intensity: dict, sharp: np.ndarray) -> dict:
    """Q1.2's directions (brighter class, sharper class, where the mean images differ most), each by an interval."""
    # every direction the text states is decided by an interval over training images (#24), fixed here:
    # brightness (mean intensity, PNEUMONIA - NORMAL), sharpness (log ratio of medians, NORMAL / PNEUMONIA)
    # and whether the mean images differ more in the central half than overall (on 4 x 4 block means,
    # so that each bootstrap draw stays cheap; the point values in numbers["visible"] are at full resolution)
    h, w = x.shape[1:]
    boot = dict(n_boot=cfg["attribution.bootstrap"], seed=cfg["data.seed"], level=1 - cfg["verdicts.alpha"])
    bright = intervals.two_sample(lambda a, b: b.mean() - a.mean(), intensity["NORMAL"], intensity["PNEUMONIA"], **boot)
    sharp_lr = intervals.two_sample(lambda a, b: np.log(max(np.median(a), 1e-9) / max(np.median(b), 1e-9)),
                                    sharp[y == 0], sharp[y == 1], **boot)
    hb, wb = (h // 4) * 4, (w // 4) * 4
    blocks = x[:, :hb, :wb].reshape(len(x), hb // 4, 4, wb // 4, 4).mean((2, 4)).astype(np.float32)
    contrast = intervals.two_sample(_center_contrast, blocks[y == 0], blocks[y == 1], **boot)
    # the figures' sentences: where the mean images differ most, which class is brighter and sharper
    return {
        "center_contrast": contrast.as_dict(), "center_stronger": bool(contrast.lo > 0),
        "center_weaker": bool(contrast.hi < 0),
        "brightness_diff": bright.as_dict(), "sharpness_log_ratio": sharp_lr.as_dict(),
        "sharpness_ratio": {k: float(np.exp(v)) if k != "n" else v for k, v in sharp_lr.as_dict().items()},
        "brighter_class": intervals.sign_of(bright, "PNEUMONIA", "NORMAL"),     # None: cannot tell
        "sharper_class": intervals.sign_of(sharp_lr, "NORMAL", "PNEUMONIA"),
        "brightness_differs": intervals.sign_of(bright, "PNEUMONIA", "NORMAL") is not None,
        "sharpness_differs": intervals.sign_of(sharp_lr, "NORMAL", "PNEUMONIA") is not None,
    }


def _bias(res: Result, ctx: Context, p, counts: dict, visible: dict) -> dict:
    """Q1.3's numbers (numbers["bias"]), table q1_bias and figure q1_sizes: duplicates, patients, sizes."""
    dup = eda.duplicates(ctx.listing.records)
    split_of = {str(name): str(s) for name, s in zip(p.names, p.split)}
    pat = eda.patients(ctx.listing.records, split_of)
    wd, ht = p.width.astype(float), p.height.astype(float)
    sizes = _sizes(ctx, p, wd, ht)
    bias = {
        "duplicate_groups_within": dup.groups_within, "duplicate_files_within": dup.files_within,
        "duplicate_groups_across": dup.groups_across, "duplicate_groups_cross_class": dup.groups_cross_class,
        "duplicate_examples": [list(g) for g in dup.examples[:3]],
        "patients": pat.per_split, "images_per_patient": pat.images_per_patient,
        "max_images_per_patient": pat.max_images, "patient_overlap": pat.overlap,
        "patient_overlap_text": ", ".join(f"{k}: {v}" for k, v in pat.overlap.items()),
        "sizes": sizes,
        "size_differs": bool(any(sizes["NORMAL"][k] != sizes["PNEUMONIA"][k] for k in ("median_width", "median_height"))),
        "sharpness_ratio": visible["sharpness_train"]["NORMAL"] /
        max(1e-9, visible["sharpness_train"]["PNEUMONIA"]),
    }
    res.table("q1_bias", pd.DataFrame(_bias_rows(counts, pat, sizes, visible)),
              "Per-class measures behind the bias discussion.")
    res.figure("q1_sizes", plots.scatter_groups(
        {c: (wd[p.labels == k], ht[p.labels == k]) for k, c in enumerate(CLASSES)},
        xlabel="original width (px)", ylabel="original height (px)"),
        "Original image sizes per class (all splits).")
    return bias


def _sizes(ctx: Context, p, wd: np.ndarray, ht: np.ndarray) -> dict:
    """Q1.3's per-class original sizes, aspect ratios and share of non-grayscale files (numbers["bias"]["sizes"])."""
    aspect = wd / np.maximum(ht, 1)
    modes = _modes(ctx, p)
    return {c: {"median_width": float(np.median(wd[p.labels == k])),
                "median_height": float(np.median(ht[p.labels == k])),
                "median_aspect": float(np.median(aspect[p.labels == k])),
                "iqr_aspect": float(np.subtract(*np.percentile(aspect[p.labels == k], [75, 25]))),
                "distinct_sizes": int(len(set(zip(wd[p.labels == k], ht[p.labels == k])))),
                "rgb_share": float(np.mean([m != "L" for m, lab in zip(modes, p.labels) if lab == k]))}
            for k, c in enumerate(CLASSES)}


def _bias_rows(counts: dict, pat, sizes: dict, visible: dict) -> list[dict]:
    """Q1.3's table q1_bias: one row per per-class measure, formatted (integers without decimals)."""
    rows = [
        {"measure": "images (train)", "NORMAL": counts["train"]["NORMAL"], "PNEUMONIA": counts["train"]["PNEUMONIA"]},
        {"measure": "images per patient id (train)", **{c: pat.images_per_patient.get(c, 0.0) for c in CLASSES}},
        {"measure": "median original width (px)", **{c: sizes[c]["median_width"] for c in CLASSES}},
        {"measure": "median original height (px)", **{c: sizes[c]["median_height"] for c in CLASSES}},
        {"measure": "median aspect ratio (w/h)", **{c: sizes[c]["median_aspect"] for c in CLASSES}},
        {"measure": "share of non-grayscale files", **{c: sizes[c]["rgb_share"] for c in CLASSES}},
        {"measure": "mean intensity (train)", **visible["mean_intensity"]},
        {"measure": "median sharpness (train)", **visible["sharpness_train"]},
        {"measure": "median sharpness (test)", **visible["sharpness_test"]},
    ]
    for row in rows:
        for c in CLASSES:
            v = float(row[c])
            row[c] = f"{v:.0f}" if v.is_integer() else f"{v:.3f}"
    return rows


def _preprocessing(cfg, p) -> dict:
    """Q1.4's numbers (numbers["preprocessing"]): the preprocessing and augmentation settings, class weights."""
    out = {
        "image_size": cfg["data.image_size"], "val_fraction": cfg["data.val_fraction"],
        "seed": cfg["data.seed"], "use_kaggle_val": cfg["data.use_kaggle_val"],
        "max_per_class": cfg["data.max_per_class"], "augment": cfg["train.augment"],
        **{f"aug_{k}": v for k, v in cfg.section("augment").items()},
        "class_weights": cfg["train.class_weights"], "batch_size": cfg["train.batch_size"],
        "capped": bool(cfg["data.max_per_class"]),
        # the gamma range of the augmentation, [1 - g, 1 + g]
        "aug_gamma_range": [1 - cfg["augment.gamma"], 1 + cfg["augment.gamma"]],
    }
    # the per-sample weights training uses (xaikit.train), one value per class
    yt = p.y("train")
    w = class_weight_vector(yt, cfg["train.class_weights"])
    out["class_weight_values"] = {c: float(w[yt == k][0]) for k, c in enumerate(CLASSES)}
    out["weighted"] = cfg["train.class_weights"] != "none"   # equal weights when the split is balanced
    return out


def kaggle_val_numbers(source, split, names, used: bool) -> dict:
    """How the Kaggle val/ images were used: the decoded val/ images, and those regrouped because their
    patient id also occurs in train/ (xaikit.data.assign_splits: they join the train/ pool before the
    validation carve-out), with where the carve-out put them. ``use``: "absent" (no val/ image),
    "unused" (``data.use_kaggle_val`` off) or "added"."""
    source, split = np.asarray(source, dtype=str), np.asarray(split, dtype=str)
    moved = kaggle_val_leaks(source, names) if used else np.zeros(len(source), bool)
    ids = {patient_id(str(nm).rsplit("/", 1)[-1]) for nm in np.asarray(names)[moved]}
    images = int(np.sum(source == "val"))
    use = "absent" if not images else "added" if used else "unused"
    return {"images": images, "used": bool(used), "use": use, "says": says(use, ("absent", "unused", "added")),
            "regrouped_images": int(moved.sum()), "regrouped_patients": len(ids),
            "any_regrouped": bool(moved.any()),
            "regrouped_in_train": int(np.sum(moved & (split == "train"))),
            "regrouped_in_val": int(np.sum(moved & (split == "val")))}


def _central_half(d: np.ndarray) -> float:
    """Mean of a 2-D map over its central half (the middle half of the rows and of the columns)."""
    h, w = d.shape
    return float(d[h // 4:3 * h // 4, w // 4:3 * w // 4].mean())


def _center_contrast(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |difference of the two classes' mean images| in the central half minus over the whole image."""
    d = np.abs(b.mean(0) - a.mean(0))
    return _central_half(d) - float(d.mean())


def _modes(ctx: Context, p) -> list[str]:
    # decode modes are not cached; the original mode is recoverable from the file header cheaply
    from PIL import Image
    root = Path(ctx.listing.root)
    out = []
    for name in p.names:
        try:
            with Image.open(root / str(name)) as im:
                out.append(im.mode)
        except OSError:
            out.append("?")
    return out


SECTION = Section(
    name="q1", title="Q1 The data", run=run,
    sources=sources.of(__file__),
    config=("data.", "train.augment", "train.class_weights", "train.batch_size", "augment.",
            "attribution.bootstrap", "verdicts.alpha"),
    subs=(
        Sub("Q1.1", "Label distribution and example images", "q1_1.md",
            figures=(Appendix("q1_counts"), "q1_examples"), tables=(Appendix("q1_counts"),)),
        Sub("Q1.2", "Visible differences between the classes", "q1_2.md",
            figures=("q1_means", Appendix("q1_hist"), Appendix("q1_sharp"))),
        Sub("Q1.3", "Sources of bias", "q1_3.md", figures=(Appendix("q1_sizes"),), tables=(Appendix("q1_bias"),)),
        Sub("Q1.4", "Preprocessing", "q1_4.md"),
    ))

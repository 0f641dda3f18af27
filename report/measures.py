"""Measures shared by Q3 (IG) and Q4 (Grad-CAM): lung masks, regions, consistency, figures.

One code path for both methods, so their numbers are comparable. Every measure comes with
its interval over images and with null references: the same measure for a map of the input
alone (|x - baseline|) and for a random map at the method's resolution. Cut-offs behind
verdict words come from the ``[verdicts]`` section of the config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import zoom

from xaikit import intervals, misclassified, plots, regions, similarity
from xaikit.data import CLASSES, decode_listing
from xaikit.pipeline import to_float

from .context import Context
from .words import says  # noqa: F401  (the sections' verdict words as booleans)

HAND_MASKS = Path(__file__).parent / "lung_masks.json"
GROUPS = ("all",) + CLASSES


def settings(ctx: Context) -> dict:
    """Cut-offs, bootstrap size and seed for the measures of Q3 and Q4."""
    v = ctx.cfg.section("verdicts")
    return {**v, "level": 1 - v["alpha"], "n_boot": ctx.cfg["attribution.bootstrap"],
            "seed": ctx.cfg["attribution.seed"], "cells": ctx.cfg["attribution.comparison_cells"]}


def groups(labels: np.ndarray):
    yield "all", np.ones(len(labels), bool)
    for k, c in enumerate(CLASSES):
        yield c, labels == k


def hand_drawn() -> dict:
    """The hand-drawn lung fields of ``lung_masks.json``: development (training images, they make
    the atlas) and validation (test images, only scored against)."""
    return json.loads(HAND_MASKS.read_text())


def atlas(size: int) -> np.ndarray:
    """The lung mask of Q3/Q4: majority vote of the development lung fields at ``size`` px."""
    return regions.atlas_mask([list(p.values()) for p in hand_drawn()["development"].values()], (size, size))


def lung_masks(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the atlas for every image N x H x W, fallback flags N of the image-specific segmentation,
    reported for comparison)."""
    size = images.shape[1]
    fallback = np.array([regions.segment_lungs(im[..., 0]).fallback for im in images])
    return np.broadcast_to(atlas(size), images.shape[:3]).copy(), fallback


def mask_numbers(masks: np.ndarray, fallback: np.ndarray, labels: np.ndarray) -> dict:
    """Mask area per class, and how often the image-specific segmentation fell back to its prior."""
    return {g: {"area": float(masks[sel].mean()), "fallback_rate": float(fallback[sel].mean()),
                "fallbacks": int(fallback[sel].sum()), "n": int(sel.sum())} for g, sel in groups(labels)}


def hand_mask_dice(ctx: Context, s: dict) -> dict | None:
    """Dice against the validation lung fields (hand-drawn on test images) of three masks: the
    atlas (what Q3/Q4 use), the image-specific segmentation (dark regions filled to their
    convex hull) and the elliptical prior (the null reference). None when fewer than two of
    those images are in the dataset."""
    drawn = hand_drawn()
    val = drawn["validation"]
    recs = tuple(r for r in ctx.listing.records if r.relpath in val)
    if len(recs) < 2:                  # an interval needs at least two images
        return None
    size = ctx.cfg["data.image_size"]
    dec = decode_listing(ctx.listing, size, recs)
    at = atlas(size)
    prior = regions.segment_lungs(np.zeros((size, size))).mask
    scores = {"atlas": [], "segmentation": [], "prior": []}
    labels, fb = [], []
    for rec, im in zip(dec.records, dec.images):
        truth = regions.polygon_mask(list(val[rec.relpath].values()), (size, size))
        seg = regions.segment_lungs(to_float(im[None])[0, ..., 0])
        for k, m in (("atlas", at), ("segmentation", seg.mask), ("prior", prior)):
            scores[k].append(regions.dice(m, truth))
        labels.append(rec.label)
        fb.append(seg.fallback)
    labels = np.array(labels)
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    sc = {k: np.array(v) for k, v in scores.items()}
    out = {"n": int(len(labels)), "n_development": len(drawn["development"]), "target": s["dice_target"],
           "segmentation_fallbacks": int(np.sum(fb))}
    for k, v in sc.items():
        out[k] = {"mean": intervals.mean_ci(v, **ci).as_dict(), "min": float(v.min()),
                  **{c: float(v[labels == j].mean()) for j, c in enumerate(CLASSES) if np.any(labels == j)}}
    for k in ("segmentation", "prior"):
        out[f"atlas_vs_{k}"] = intervals.bootstrap(lambda u, v: np.mean(u - v), sc["atlas"], sc[k], **ci).as_dict()
    out.update(dice_verdict(out["atlas"]["mean"], out["target"]))
    out["beats_prior"] = bool(out["atlas_vs_prior"]["lo"] > 0)
    out["beats_segmentation"] = bool(out["atlas_vs_segmentation"]["lo"] > 0)
    return out


def dice_verdict(mean: dict, target: float) -> dict:
    """The atlas's Dice target (``verdicts.dice_target``) judged by the interval of its mean Dice."""
    word = target_word(mean, target)
    return {"target_verdict": word, "meets_target": word == "meets", "misses_target": word == "misses"}


def target_word(e: dict, target: float) -> str:
    """A target judged by the interval: "meets" when the whole interval is at or above it, "misses"
    when the whole interval is below, otherwise "cannot tell (the interval contains the target)"."""
    if e["lo"] >= target:
        return "meets"
    if e["hi"] < target:
        return "misses"
    return "cannot tell (the interval contains the target)"


def random_maps(shape: tuple, cells: int, seed: int) -> np.ndarray:
    """Uniform random maps N x H x W, drawn at ``cells`` x ``cells`` and upsampled (0 = per pixel):
    the null reference at a method's own resolution."""
    n, h, w = shape
    rng = np.random.default_rng(seed)
    if cells <= 0:
        return rng.uniform(size=shape)
    return regions.upsample(rng.uniform(size=(n, cells, cells)), (h, w))   # as Grad-CAM is upsampled


def per_image_shares(maps: np.ndarray, masks: np.ndarray, border_frac: float) -> dict[str, np.ndarray]:
    """Each image's share of |map| inside its lung mask and inside the border zone (saved with the
    maps, so the explorer shows the numbers behind Q3.2 / Q4.2 image by image)."""
    maps2 = similarity.to_2d(maps)
    border = regions.border_zone(masks.shape[1:], border_frac)
    return {"lung_share": regions.image_shares(maps2, masks), "border_share": regions.image_shares(maps2, border)}


def unit_mass(maps: np.ndarray) -> np.ndarray:
    """|maps| (channels summed first, :func:`xaikit.similarity.to_2d`) each scaled to total mass 1, so that every
    image weighs the same in a mean of maps; a map without mass stays all zero."""
    u = np.abs(similarity.to_2d(maps)).astype(np.float64)
    mass = u.reshape(len(u), -1).sum(1)
    return u / np.where(mass > 0, mass, 1.0)[:, None, None]


def prior_maps(maps: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The spatial-prior null: for each image, the mean |map| of the OTHER images of its class
    (leave-one-out), each map first scaled to unit mass so every image weighs the same. An image
    alone in its class gets an all-zero prior (no other image to average)."""
    u = unit_mass(maps)
    out = np.zeros_like(u)
    for k in np.unique(labels):
        sel = np.flatnonzero(labels == k)
        if len(sel) >= 2:
            out[sel] = misclassified.loo_mean_maps(u[sel])
    return out


def interval_word(d: dict, cut: float, above: str, below: str, between: str) -> str:
    """``above`` when the whole interval lies above ``cut``, ``below`` when it lies below, else ``between``."""
    return above if d["lo"] > cut else below if d["hi"] < cut else between


def by_class(words: dict) -> tuple[bool, str]:
    """(whether both classes have the same word, that word or "W1 on NORMAL images and W2 on
    PNEUMONIA images"): a pooled verdict is stated only when both classes agree."""
    ws = [words[c] for c in CLASSES]
    if all(w == ws[0] for w in ws):
        return True, ws[0]
    return False, " and ".join(f"{w} on {c} images" for c, w in zip(CLASSES, ws))


NOT_SHARED = "cannot tell (one mask for every image: the prior's mean lung share equals the maps' own by construction)"


COMPARED = ("input", "prior", "learned")   # the null references a map is compared with, image by image (paired)
POOLED = (("lung", "lung_word"), ("border", "border_word"), ("input", "beyond_input"), ("prior", "beyond_prior"),
          ("learned", "beyond_learned"))


def region_numbers(maps: np.ndarray, masks: np.ndarray, labels: np.ndarray, nulls: dict, s: dict) -> dict:
    """Lung and border ratios (share of |map| inside / share of area) per class with intervals,
    the same for each null reference map and for the spatial prior (:func:`prior_maps`), the paired
    differences map - input alone, map - prior and map - learned nothing (``nulls["learned"]``: per image
    the mean unit-mass |map| of the random-label models, report/learned.py), each a difference of ratios
    (share_map - share_null) / lung area, and per-class verdict words; a pooled word only where both
    classes agree. ``has_learned`` says whether the learned-nothing reference is there.

    The map - prior comparison is only informative with a mask per image: with one mask for every
    image (an atlas) the mean of the leave-one-out priors' shares equals the maps' mean share
    exactly, and its word is "cannot tell" (:data:`NOT_SHARED`)."""
    border = regions.border_zone(masks.shape[1:], s["border_frac"])
    shared = bool(np.all(masks == masks[:1]))
    nulls = {**nulls, "prior": prior_maps(maps, labels)}
    out = {"margin": s["lung_margin"], "border_frac": s["border_frac"], "level": s["level"],
           "lung_cut": 1 + s["lung_margin"], "shared_mask": shared, "has_learned": "learned" in nulls,
           "prior_rule": "leave-one-out mean of the unit-mass |maps| of the other images of the same class"}
    for g, sel in groups(labels):
        out[g] = _region_row(maps, masks, border, sel, nulls, s)
        if shared:
            out[g]["beyond_prior"] = NOT_SHARED
    for key, word in POOLED:
        if all(word in out[c] for c in CLASSES):
            out[f"{key}_agree"], out[f"{key}_by_class"] = by_class({c: out[c][word] for c in CLASSES})
    out["lung_verdict"], out["border_verdict"] = out["lung_by_class"], out["border_by_class"]
    for null in ("input", "learned"):
        if f"{null}_by_class" in out:
            out[f"beyond_{null}"] = out[f"{null}_by_class"]
    out["beyond_prior"] = out["prior_by_class"]
    out["answer"] = region_answer(out)
    return out


def _region_row(maps: np.ndarray, masks: np.ndarray, border: np.ndarray, sel: np.ndarray, nulls: dict,
                s: dict) -> dict:
    """:func:`region_numbers` for the images ``sel``: the ratios of the map and of every null, the paired
    differences with the nulls of :data:`COMPARED`, and the words."""
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    cut = 1 + s["lung_margin"]
    ratio = lambda sh, ar: np.mean(sh) / np.mean(ar)
    diff = lambda a, b, ar: (np.mean(a) - np.mean(b)) / np.mean(ar)
    area = masks[sel].reshape(int(sel.sum()), -1).mean(1)
    barea = np.full(int(sel.sum()), border.mean())
    row = {"n": int(sel.sum()), "lung_area": float(area.mean()), "border_area": float(border.mean())}
    shares = {}
    for name, m in (("map", maps), *nulls.items()):
        ls, bs = regions.image_shares(m[sel], masks[sel]), regions.image_shares(m[sel], border)
        shares[name] = ls
        row[name] = {"lung_share": float(ls.mean()), "border_share": float(bs.mean()),
                     "lung_ratio": intervals.bootstrap(ratio, ls, area, **ci).as_dict(),
                     "border_ratio": intervals.bootstrap(ratio, bs, barea, **ci).as_dict()}
    lr, br = row["map"]["lung_ratio"], row["map"]["border_ratio"]
    row["lung_word"] = ("concentrated in the lung fields" if lr["lo"] >= cut else
                        "not concentrated in the lung fields" if lr["hi"] < cut else
                        "not clearly concentrated in the lung fields (the interval contains the cut-off)")
    row["border_word"] = interval_word(br, 1, "over-represented in the image border",
                                       "under-represented in the image border",
                                       "neither over- nor under-represented in the image border")
    for null in COMPARED:
        if null in shares:
            d = row[f"vs_{null}"] = intervals.bootstrap(diff, shares["map"], shares[null], area, **ci).as_dict()
            row[f"beyond_{null}"] = interval_word(d, 0, "more", "less", "no more and no less")
    return row


ZONE_WHERE = {   # the zones as places in a sentence ("puts 38% of its mass <where>")
    "right_lung": "in the right lung (the image's left)", "left_lung": "in the left lung (the image's right)",
    "mediastinum": "over the mediastinum and heart", "above": "above the lungs (neck, shoulders)",
    "below": "below the lungs (diaphragm, abdomen)", "lateral": "beside the lungs (lateral chest wall, axillae)",
    "border": "in the border strip (letters, markers)"}


def zone_masks(lungs: np.ndarray, border_frac: float) -> dict[str, np.ndarray]:
    """The named zones of :func:`xaikit.regions.zones` for a 2-D lung mask (the atlas)."""
    return regions.zones(lungs, regions.border_zone(lungs.shape, border_frac))


def _text_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def zone_extremes(rows: dict) -> tuple[dict | None, dict | None]:
    """(the zone that stands out most: the highest ratio among zones whose interval lies wholly
    above 1; the most under-represented: the lowest ratio among those wholly below 1), each as
    {zone, label, where, share, area, ratio, input_ratio, beyond_input}, None when no zone qualifies."""
    def pick(keep, key):
        cand = [z for z, r in rows.items() if keep(r["ratio"])]
        if not cand:
            return None
        z = key(cand, key=lambda k: rows[k]["ratio"]["value"])
        r = rows[z]
        return {"zone": z, "label": regions.ZONE_LABELS[z], "where": ZONE_WHERE[z], "share": r["share"],
                "area": r["area"], "ratio": r["ratio"], "input_ratio": r["input_ratio"],
                "beyond_input": r["beyond_input"]}
    return pick(lambda e: e["lo"] > 1, max), pick(lambda e: e["hi"] < 1, min)


def set_extremes(row: dict) -> None:
    """A class's zone row gets its ``top`` and ``bottom`` zones (:func:`zone_extremes`) and whether
    there is one (``has_top``, ``has_bottom``: what the answer templates test)."""
    row["top"], row["bottom"] = zone_extremes(row["zones"])
    row["has_top"], row["has_bottom"] = row["top"] is not None, row["bottom"] is not None


def zone_numbers(maps: np.ndarray, lungs: np.ndarray, labels: np.ndarray, nulls: dict, s: dict) -> dict:
    """Where the mass of |maps| lies by named zone (:func:`xaikit.regions.zones` of the 2-D lung
    mask ``lungs`` and the border strip), per true class: each zone's area, the mean share of
    |map| in it, the ratio share / area with its interval over images, the same for the input
    alone (``nulls["input"]``) and the spatial prior (:func:`prior_maps`), the paired difference
    map - input, and a word ("over-represented" / "under-represented" / "neither", by the
    interval against 1). Sentence material: per class the zone that stands out most and the
    most under-represented (:func:`zone_extremes`); between classes, the difference of ratios
    PNEUMONIA - NORMAL per zone with a two-sample interval (different images: not paired)."""
    zs = zone_masks(np.asarray(lungs, bool), s["border_frac"])
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    prior = prior_maps(maps, labels)
    out = {"rule": regions.ZONE_RULE, "level": s["level"], "order": list(regions.ZONES),
           "labels": dict(regions.ZONE_LABELS), "where": dict(ZONE_WHERE),
           "area": {z: float(m.mean()) for z, m in zs.items()}}
    ratio = lambda sh, ar: np.mean(sh) / np.mean(ar)
    diff = lambda a, b, ar: (np.mean(a) - np.mean(b)) / np.mean(ar)
    scaled = {}                               # per class and zone: each image's share / the zone's area
    for k, c in enumerate(CLASSES):
        sel = labels == k
        n = int(sel.sum())
        row = {"n": n, "zones": {}}
        scaled[c] = {}
        if n < 2:                              # an interval needs two images
            row.update(top=None, bottom=None)
            out[c] = row
            continue
        for z, m in zs.items():
            area = np.full(n, m.mean())
            sh = {name: regions.image_shares(v[sel], m) for name, v in
                  (("map", maps), ("input", nulls["input"]), ("prior", prior))}
            d = intervals.bootstrap(diff, sh["map"], sh["input"], area, **ci).as_dict()
            r = intervals.bootstrap(ratio, sh["map"], area, **ci).as_dict()
            row["zones"][z] = {
                "label": regions.ZONE_LABELS[z], "area": float(m.mean()), "share": float(sh["map"].mean()),
                "ratio": r, "input_share": float(sh["input"].mean()),
                "input_ratio": intervals.bootstrap(ratio, sh["input"], area, **ci).as_dict(),
                "prior_ratio": intervals.bootstrap(ratio, sh["prior"], area, **ci).as_dict(),
                "vs_input": d, "beyond_input": interval_word(d, 0, "more", "less", "no more and no less"),
                "word": interval_word(r, 1, "over-represented", "under-represented", "neither")}
            scaled[c][z] = sh["map"] / m.mean()
        set_extremes(row)
        out[c] = row
    out["between"] = zone_between(scaled, s)
    out["prior_repeats"] = bool(all(np.isclose(r["prior_ratio"]["value"], r["ratio"]["value"], rtol=1e-6, atol=0)
                                    for c in CLASSES for r in out[c]["zones"].values()))   # float32 maps
    return out


def zone_between(scaled: dict, s: dict) -> dict:
    """Which zones differ between classes: per zone the difference of mean ratios PNEUMONIA - NORMAL
    with a two-sample percentile interval (each class resampled on its own: different images), the
    zones whose interval lies wholly above 0 (more on PNEUMONIA) or below (more on NORMAL). None
    when a class has fewer than two images."""
    a, b = CLASSES[1], CLASSES[0]
    if not scaled.get(a) or not scaled.get(b):
        return {"checkable": False, "differs": False, "both_ways": False, "zones": {}, "more_on": {c: [] for c in CLASSES},
                "more_on_text": {c: "" for c in CLASSES}, "more_on_any": {c: False for c in CLASSES},
                "rule": "fewer than two images of a class"}
    zones = {}
    for z in scaled[a]:
        e = misclassified.diff_means(scaled[a][z], scaled[b][z], n_boot=s["n_boot"], seed=s["seed"],
                                     level=s["level"]).as_dict()
        zones[z] = {"diff": e, "word": misclassified.direction(e, (f"more on {a}", f"more on {b}", "no different"))}
    more_on = {a: [ZONE_WHERE[z] for z, r in zones.items() if r["diff"]["lo"] > 0],
               b: [ZONE_WHERE[z] for z, r in zones.items() if r["diff"]["hi"] < 0]}
    return {"checkable": True, "zones": zones, "more_on": more_on,
            "more_on_text": {c: _text_list(v) for c, v in more_on.items()},
            "more_on_any": {c: bool(v) for c, v in more_on.items()},
            "differs": bool(more_on[a] or more_on[b]), "both_ways": bool(more_on[a] and more_on[b]),
            "rule": f"difference of mean ratios {a} - {b}, two-sample percentile bootstrap (classes are different images)"}


def zone_table(z: dict, method: str) -> pd.DataFrame:
    """The numbers of :func:`zone_numbers`, one row per zone: area, per class the map's share with its
    ratio, the input's ratio, and the class difference of ratios (``method`` names the map)."""
    lv = f"{z['level']:.0%}"
    f = lambda e: f"{e['value']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]"
    rows = []
    for zone in z["order"]:
        row = {"zone": z["labels"][zone], "area": f"{z['area'][zone]:.0%}"}
        for c in CLASSES:
            r = z[c]["zones"].get(zone)
            if r is None:
                continue
            row[f"{c}: {method} share (ratio [{lv} CI])"] = f"{r['share']:.0%} ({f(r['ratio'])})"
            row[f"{c}: input alone, ratio"] = f"{r['input_ratio']['value']:.2f}"
            if not z["prior_repeats"]:
                row[f"{c}: spatial prior, ratio"] = f"{r['prior_ratio']['value']:.2f}"
        if zone in z["between"]["zones"]:
            row[f"{CLASSES[1]} - {CLASSES[0]} ratio [{lv} CI]"] = f(z["between"]["zones"][zone]["diff"])
        rows.append(row)
    return pd.DataFrame(rows)


def zone_figure(image: np.ndarray, lungs: np.ndarray, border_frac: float, title: str = ""):
    """The zones drawn once, colour-coded over ``image``, with their areas in the legend."""
    zs = zone_masks(np.asarray(lungs, bool), border_frac)
    return plots.zone_map(np.asarray(image, np.float64)[..., 0] if np.ndim(image) == 3 else image,
                          {f"{regions.ZONE_LABELS[z]}, {m.mean():.0%}": m for z, m in zs.items()}, title=title)


def region_answer(r: dict) -> str:
    """The one-word answer to "do the maps highlight sensible regions?" from a :func:`region_numbers` result.

    "Yes" when in every class the map is concentrated in the lungs, not over-represented in the border,
    puts more mass in the lungs than the input alone and than a model that learned nothing
    (``beyond_learned``: the random-label models' maps of the same images). The spatial prior keeps a
    say only where it can tell something: with a mask per image it must be beaten too; with one mask
    for every image (``shared_mask``) its difference is zero by construction and the learned-nothing
    reference decides alone. Without that reference (no random-label model counted) the rule is the
    spatial prior's alone, which a shared mask never passes.
    "No" when in every class the map is not concentrated in the lungs or over-represented in the border;
    "Partly" otherwise."""
    rows = [r[c] for c in CLASSES]
    learned = all("beyond_learned" in w for w in rows)
    prior_decides = not (learned and r.get("shared_mask", False))
    if all(w["lung_word"] == "concentrated in the lung fields" and not w["border_word"].startswith("over")
           and w.get("beyond_input", "more") == "more" and w.get("beyond_learned", "more") == "more"
           and (w["beyond_prior"] == "more" or not prior_decides) for w in rows):
        return "Yes"
    if all(w["lung_word"] == "not concentrated in the lung fields" or w["border_word"].startswith("over")
           for w in rows):
        return "No"
    return "Partly"


REGION_KEYS = ("lung_word", "border_word", "beyond_input", "beyond_prior", "beyond_learned")
UNDECIDED = ("not clearly concentrated in the lung fields (the interval contains the cut-off)",
             "neither over- nor under-represented in the image border", "no more and no less")


def verdicts_hold(a: dict, b: dict) -> bool:
    """Whether two :func:`region_numbers` results reach the same verdict words in every class."""
    return all(a[c].get(k) == b[c].get(k) for c in CLASSES for k in REGION_KEYS)


def verdict_change(a: dict, b: dict) -> str:
    """How the verdicts of ``a`` fare on a subset ``b``: "hold" (every word the same), "hold but are
    less certain" (some decided words become undecided, as fewer images widen the intervals, and
    none turns into another decided word), or "change"."""
    pairs = [(a[c].get(k), b[c].get(k)) for c in CLASSES for k in REGION_KEYS]
    if all(u == v for u, v in pairs):
        return "hold"
    if all(u == v or (v in UNDECIDED and u not in UNDECIDED) for u, v in pairs):
        return "hold but are less certain"
    return "change"


def upsampling_numbers(grid: np.ndarray, maps: np.ndarray, masks: np.ndarray, s: dict) -> dict:
    """How the upsampling moves mass: lung and border shares of the centre-aligned ``maps`` (what the
    report uses) against tf-keras-vis's corner-aligned zoom of the same ``grid`` maps, with paired
    intervals of centre - corner."""
    h, w = maps.shape[1:3]
    corner = zoom(np.asarray(grid, np.float64), (1, h / grid.shape[1], w / grid.shape[2]), order=1)
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    sh = {k: per_image_shares(m, masks, s["border_frac"]) for k, m in (("centre", maps), ("corner", corner))}
    out = {"rule": regions.UPSAMPLING, "grid": int(grid.shape[1])}
    for share in ("lung_share", "border_share"):
        out[share] = {"centre": float(sh["centre"][share].mean()), "corner": float(sh["corner"][share].mean()),
                      "centre_minus_corner": intervals.bootstrap(lambda u, v: np.mean(u - v), sh["centre"][share],
                                                                 sh["corner"][share], **ci).as_dict()}
    return out


def brightness_numbers(last: np.ndarray, early: np.ndarray, s: dict) -> dict:
    """How bright two layers' Grad-CAM maps print when each map is scaled by its maximum (as in the
    figures): per layer, the mean of map / max (the share of the colour scale the average pixel
    reaches) and the share of pixels at or above half the maximum, with intervals over images, and
    the paired difference early - last of the first (``measured`` False with fewer than two maps
    that are not all zero). ``darker`` is True when that interval lies
    below 0, False when above, None when it contains 0. All-zero maps are left out (and counted)."""
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    flat = lambda m: m.reshape(len(m), -1).astype(np.float64)
    a, b = flat(last), flat(early)
    keep = (a.max(1) > 0) & (b.max(1) > 0)
    a, b = a[keep], b[keep]
    out = {"n": int(keep.sum()), "flat": int((~keep).sum()), "measured": bool(keep.sum() >= 2)}
    if not out["measured"]:
        return dict(out, darker=None)
    rel = {k: m.mean(1) / m.max(1) for k, m in (("last", a), ("early", b))}
    hot = {k: (m >= 0.5 * m.max(1, keepdims=True)).mean(1) for k, m in (("last", a), ("early", b))}
    for k in ("last", "early"):
        out[k] = {"mean_brightness": intervals.mean_ci(rel[k], **ci).as_dict(),
                  "hot_area": intervals.mean_ci(hot[k], **ci).as_dict()}
    d = intervals.bootstrap(lambda u, v: np.mean(u - v), rel["early"], rel["last"], **ci).as_dict()
    out["early_minus_last"] = d
    out["darker"] = True if d["hi"] < 0 else (False if d["lo"] > 0 else None)
    out["darker_says"] = says("darker" if out["darker"] else "brighter" if out["darker"] is False else "not shown",
                              ("darker", "brighter", "not shown"))
    return out


def negative_delta_numbers(delta: np.ndarray, targets: np.ndarray, maps: np.ndarray, masks: np.ndarray,
                           labels: np.ndarray, nulls: dict, s: dict, full: dict) -> dict:
    """IG explains F(x) - F(baseline): count, per explained target, the images whose difference is
    negative (the baseline scores higher than the image), and recompute the region verdicts without
    them: ``verdicts`` says whether they hold (:func:`verdict_change`); ``verdicts_hold`` (every word
    the same) is None when a class keeps fewer than two images."""
    neg = np.asarray(delta) < 0
    out = {c: {"n": int(np.sum(targets == k)), "negative": int(np.sum(neg & (targets == k))),
               "min": float(np.min(delta[targets == k])) if np.any(targets == k) else 0.0}
           for k, c in enumerate(CLASSES)}
    out["negative"] = int(neg.sum())
    out["any_negative"] = bool(neg.any())
    out["n"] = int(len(neg))
    keep = ~neg
    if not neg.any():
        out["verdicts_hold"], out["verdicts"] = True, "hold"
    elif min(np.sum(keep & (labels == k)) for k in range(len(CLASSES))) < 2:
        out["verdicts_hold"], out["verdicts"] = None, "cannot be recomputed (fewer than two images of a class remain)"
    else:
        r = region_numbers(maps[keep], masks[keep], labels[keep], {k: v[keep] for k, v in nulls.items()}, s)
        out["regions"] = {k: r[k] for k in ("lung_verdict", "border_verdict", "beyond_input", "beyond_learned",
                                            "answer") if k in r}
        out["regions"].update({c: {k: r[c][k] for k in ("n", "lung_word", "border_word", "beyond_input",
                                                        "beyond_learned")
                                   if k in r[c]} | {"lung_ratio": r[c]["map"]["lung_ratio"]} for c in CLASSES})
        out["verdicts_hold"] = verdicts_hold(full, r)
        out["verdicts"] = verdict_change(full, r)
    out["verdicts_changed"] = out["verdicts_hold"] is False     # recomputed, and some word changed
    return out


def winner(diff: dict, a: str, b: str, higher_is_better: bool) -> str | None:
    """Which of ``a`` and ``b`` is better by the interval of ``a - b``; None when it contains 0."""
    if diff["lo"] > 0:
        return a if higher_is_better else b
    if diff["hi"] < 0:
        return b if higher_is_better else a
    return None


def region_table(r: dict, method: str) -> pd.DataFrame:
    """The ratios of :func:`region_numbers`, one row per image group and map."""
    label = {"map": method, "input": "|x - baseline| (input alone)", "random": "random map",
             "prior": f"spatial prior (mean {method} of the other images of the class)",
             "learned": f"a model that learned nothing (mean {method} of the random-label models counted in Q5.1)"}
    rows = []
    for g in GROUPS:
        for name in [k for k in ("map", "learned", "prior", "input", "random") if k in r[g]]:
            e, b = r[g][name]["lung_ratio"], r[g][name]["border_ratio"]
            rows.append({"images": g, "n": r[g]["n"], "map": label[name],
                         "lung share": r[g][name]["lung_share"], "lung area": r[g]["lung_area"],
                         f"lung ratio [{r['level']:.0%} CI]": f"{e['value']:.2f} [{e['lo']:.2f}, {e['hi']:.2f}]",
                         f"border ratio [{r['level']:.0%} CI]": f"{b['value']:.2f} [{b['lo']:.2f}, {b['hi']:.2f}]"})
    return pd.DataFrame(rows)


GROUPINGS = ("target", "label")   # group maps by the explained (decided) class, or by the true label


def level_word(e: dict, high: float, moderate: float) -> str:
    """The consistency level from the interval of a within-group mean Spearman: "high" when the
    whole interval is >= ``high``, "moderate" when it lies in [moderate, high), "low" when it
    lies wholly below ``moderate``; otherwise the two levels it spans."""
    lo, hi = e["lo"], e["hi"]
    if lo >= high:
        return "high"
    if lo >= moderate and hi < high:
        return "moderate"
    if hi < moderate:
        return "low"
    return (f"between {'low' if lo < moderate else 'moderate'} and {'high' if hi >= high else 'moderate'} "
            "(the interval contains the cut-off)")


def more_or_less(e: dict) -> str:
    """"more" / "less" when the interval of a difference excludes 0 on that side."""
    return "more" if e["lo"] > 0 else "less" if e["hi"] < 0 else "not shown to be more or less"


def _pooled_abs(maps: np.ndarray, cells: int) -> np.ndarray:
    """|maps| average-pooled to ``cells`` x ``cells`` (``attribution.comparison_cells``)."""
    return similarity.pool(np.abs(similarity.to_2d(maps)), cells)


CANNOT_TELL = "cannot tell"
_NAN = {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}


def too_few(groups: np.ndarray, noun: str = "") -> str | None:
    """Why consistency cannot be measured on ``groups`` (fewer than 2 maps of a group: a model
    that decides every explained image as one class, a class with one explained image), or None."""
    n = [int(np.sum(np.asarray(groups) == k)) for k in (0, 1)]
    if min(n) >= 2:
        return None
    return f"{n[0]} NORMAL and {n[1]} PNEUMONIA{noun}; at least 2 of each are needed"


def _cannot_tell(reason: str, groups: np.ndarray) -> dict:
    """The numbers of :func:`_consistency` when the groups do not allow it: every word says why."""
    return {"within": {**{c: dict(_NAN) for c in CLASSES}, "mean": dict(_NAN)}, "within_mean": float("nan"),
            "across": float("nan"), "n": {c: int(np.sum(np.asarray(groups) == k)) for k, c in enumerate(CLASSES)},
            "levels": {c: f"{CANNOT_TELL} ({reason})" for c in CLASSES},
            "levels_agree": True, "level": f"not measurable ({CANNOT_TELL}: {reason})", "diff": dict(_NAN),
            "p_value": float("nan"), "class_specific": False, "told": False, "reason": reason}


def _consistency(maps: np.ndarray, groups: np.ndarray, s: dict, noun: str = "") -> dict:
    """Within-group Spearman per group with intervals and levels, across, and the permutation
    test of within > across, for groups 0/1 (NORMAL/PNEUMONIA) of ``groups`` (``noun`` names
    the groups in the level text: " targets" or " images"); "cannot tell" with its reason when
    a group has fewer than 2 maps."""
    reason = too_few(groups, noun)
    if reason is not None:
        return _cannot_tell(reason, groups)
    pooled = _pooled_abs(maps, s["cells"])
    ci = dict(n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    c = similarity.consistency(pooled, groups)
    t = similarity.consistency_test(pooled, groups, n_perm=s["n_boot"], **ci)
    w = similarity.within_intervals(pooled, groups, **ci)
    within = dict(zip(CLASSES, (w.a.as_dict(), w.b.as_dict())), mean=w.mean.as_dict())
    levels = {k: level_word(within[k], s["consistency_high"], s["consistency_moderate"]) for k in CLASSES}
    agree = levels[CLASSES[0]] == levels[CLASSES[1]]
    return {"within": within, "within_mean": w.mean.value, "across": c.across,
            "n": {CLASSES[0]: c.n_a, CLASSES[1]: c.n_b}, "levels": levels, "levels_agree": agree,
            "level": (levels[CLASSES[0]] if agree else
                      f"{levels[CLASSES[0]]} for {CLASSES[0]}{noun} and {levels[CLASSES[1]]} for {CLASSES[1]}{noun}"),
            "diff": {"value": t.diff, "lo": t.lo, "hi": t.hi}, "p_value": t.p_value,
            "class_specific": bool(t.p_value < s["alpha"] and t.lo > 0), "told": True, "reason": ""}


def _vs_input(maps: np.ndarray, input_alone: np.ndarray, groups: np.ndarray, s: dict) -> dict:
    """Paired map - input alone: within-group mean and within - across, one shared resample
    ("cannot tell" when a group has fewer than 2 maps)."""
    reason = too_few(groups, " images")
    if reason is not None:
        word = f"not measured as more or less ({CANNOT_TELL}: {reason})"
        return {"within": dict(_NAN), "specificity": dict(_NAN), "alike": word, "specific": word,
                "specific_beyond_input": False, "told": False}
    pc = similarity.paired_consistency(_pooled_abs(maps, s["cells"]), _pooled_abs(input_alone, s["cells"]), groups,
                                       n_boot=s["n_boot"], seed=s["seed"], level=s["level"])
    return {"within": pc.within.as_dict(), "specificity": pc.specificity.as_dict(),
            "alike": more_or_less(pc.within.as_dict()), "specific": more_or_less(pc.specificity.as_dict()),
            "specific_beyond_input": bool(pc.specificity.lo > 0), "told": True}


LEARNED_WORDS = {"more": "more class-specific than a model that learned nothing",
                 "no_more": "no more class-specific than a model that learned nothing",
                 "cannot_tell": CANNOT_TELL}
NO_MODEL = "no random-label model is counted in Q5.1"


def _learned_cannot_tell(reason: str, names: list) -> dict:
    """The numbers of :func:`learned_specificity` when there is no reference to compare with: the words say why."""
    return {"per_model": [{"model": m, "diff": dict(_NAN)} for m in names], "per_model_text": "",
            "reference": dict(_NAN), "reference_models": dict(_NAN), "difference": dict(_NAN), "vs_input": dict(_NAN),
            "vs_input_word": f"{CANNOT_TELL} ({reason})", "word": f"{CANNOT_TELL} ({reason})",
            "says": says("cannot_tell", LEARNED_WORDS), "told": False, "reason": reason,
            "learned_specific": False, "learned_beyond_input": False, "method_property": False}


def _per_model_text(names: list, r) -> str:
    """Each model's within - across with its interval over images; with several, their mean over images and
    over images and models ("random-1 0.612 [0.501, 0.733]; random-2 ...; mean ... over images, [lo, hi] over
    images and models")."""
    t = lambda e: f"{e.value:.3f} [{e.lo:.3f}, {e.hi:.3f}]"
    text = "; ".join(f"{m} {t(e)}" for m, e in zip(names, r.per_stack))
    if len(names) > 1:
        text += (f"; mean {t(r.reference)} over images, [{r.reference_models.lo:.3f}, {r.reference_models.hi:.3f}] "
                 "over images and models")
    return text


def learned_specificity(maps: np.ndarray, input_alone: np.ndarray, references: dict, groups: np.ndarray, s: dict,
                        main: dict, *, none_reason: str = NO_MODEL) -> dict:
    """Class specificity against a model that learned nothing (Q3.3 / Q4.3; issue #32, item 3): within - across of
    each counted random-label model's own maps (``references``: name -> maps of the main model's images explained
    at its targets, grouped by ``groups`` as the main maps are), their mean with intervals over images and, with
    several models, over models too; the paired difference main - reference (one shared resample) and the
    reference - input alone. ``word``: "more" when the interval of main - reference lies above 0, else "no more";
    "cannot tell" without a counted model (``none_reason``) or with fewer than 2 maps of a group.

    ``method_property``: a verdict of class specificity of the main maps (``main``, from :func:`consistency_numbers`:
    the maps separate the groups, or more than the input alone) that the models that learned nothing reach too
    (their interval of the same measure above 0) and that the main maps do not exceed: a property of the method,
    not of the classifier."""
    names = list(references)
    out = {"models": names, "n": len(names), "any": bool(names), "several": len(names) > 1,
           "rule": "within minus across of each counted random-label model's own maps of the main model's images, "
                   "explained at its targets and grouped by them",
           "ci_text": f"{s['level']:.0%} bootstrap intervals, the images resampled within each target"}
    reason = too_few(groups, " targets") if names else none_reason
    if reason is not None:
        return {**out, **_learned_cannot_tell(reason, names)}
    cells = s["cells"]
    r = similarity.specificity_against(_pooled_abs(maps, cells), [_pooled_abs(m, cells) for m in references.values()],
                                       groups, input_alone=_pooled_abs(input_alone, cells), n_boot=s["n_boot"],
                                       seed=s["seed"], level=s["level"])
    word = "more" if r.difference.lo > 0 else "no_more"
    ref, vs_input = r.reference_models.as_dict(), r.vs_input.as_dict()
    out.update(per_model=[{"model": m, "diff": e.as_dict()} for m, e in zip(names, r.per_stack)],
               per_model_text=_per_model_text(names, r), reference=r.reference.as_dict(), reference_models=ref,
               difference=r.difference.as_dict(), vs_input=vs_input, vs_input_word=more_or_less(vs_input),
               word=LEARNED_WORDS[word], says=says(word, LEARNED_WORDS), told=True, reason="",
               learned_specific=bool(ref["lo"] > 0), learned_beyond_input=bool(vs_input["lo"] > 0))
    reached = ((main["class_specific"] and out["learned_specific"]) or
               (bool(_get(main, ("vs_input", "specific_beyond_input"))) and out["learned_beyond_input"]))
    out["method_property"] = bool(reached and word == "no_more")
    return out


def consistency_numbers(maps: np.ndarray, nulls: dict, s: dict, *, labels: np.ndarray, targets: np.ndarray,
                        by: str = "target") -> dict:
    """Consistency of pooled |maps| with maps grouped ``by`` the explained target (the decided
    class) or the true label: within-group Spearman per group with intervals and levels, within
    minus across with its permutation test, the same for each null reference, and the paired
    test of map minus input alone. Grouped by target, the true-label numbers are added."""
    if by not in GROUPINGS:
        raise ValueError(f"consistency grouping expects one of {GROUPINGS}, got {by!r}")
    groups = np.asarray(targets if by == "target" else labels)
    noun = {"target": " targets", "label": " images"}[by]
    out = _consistency(maps, groups, s, noun)
    out.update(by=by, cells=s["cells"], high=s["consistency_high"], moderate=s["consistency_moderate"],
               alpha=s["alpha"], ci_level=s["level"], n_perm=s["n_boot"])
    out["nulls"] = {k: _consistency(m, groups, s, noun) for k, m in nulls.items()}
    if "input" in nulls:
        out["vs_input"] = _vs_input(maps, nulls["input"], groups, s)
    if by == "target":
        lab = _consistency(maps, np.asarray(labels), s, " images")
        out["by_label"] = {k: lab[k] for k in ("diff", "p_value", "class_specific", "within_mean", "level")}
        if "input" in nulls:
            out["by_label"]["vs_input"] = _vs_input(maps, nulls["input"], np.asarray(labels), s)
        out["n_target_not_label"] = int(np.sum(np.asarray(targets) != np.asarray(labels)))
    return out


def consistency_without(maps: np.ndarray, nulls: dict, s: dict, full: dict, *, labels: np.ndarray,
                        targets: np.ndarray, drop: np.ndarray) -> dict:
    """Does the consistency verdict ``full`` (from :func:`consistency_numbers`) hold without the
    images flagged by ``drop``? Compares the levels and the class specificity beyond the input.
    "cannot be checked" when fewer than 2 images of a group remain."""
    drop = np.asarray(drop, bool)
    groups = np.asarray(targets if full["by"] == "target" else labels)
    keep = ~drop
    out = {"n_dropped": {c: int(np.sum(drop & (groups == k))) for k, c in enumerate(CLASSES)},
           "n_kept": {c: int(np.sum(keep & (groups == k))) for k, c in enumerate(CLASSES)}}
    if min(out["n_kept"].values()) < 2:
        return {**out, "checkable": False, "changed": [],
                "verdict": "cannot be checked (fewer than 2 images of a group remain without them)"}
    sub = full if not drop.any() else consistency_numbers(
        maps[keep], {k: m[keep] for k, m in nulls.items()}, s, labels=np.asarray(labels)[keep],
        targets=np.asarray(targets)[keep], by=full["by"])
    spec = ("vs_input", "specificity")
    compared = {"levels": [(full["levels"][c], sub["levels"][c], full["within"][c], sub["within"][c])
                           for c in CLASSES],
                "class specificity beyond the input": [(_get(full, ("vs_input", "specific")),
                                                        _get(sub, ("vs_input", "specific")), _get(full, spec),
                                                        _get(sub, spec))]}
    status = {name: max((_change(*row) for row in rows), key=_CHANGES.index) for name, rows in compared.items()}
    changed = [name for name, st in status.items() if st != "same"]
    return {**out, "checkable": True, "level": sub["level"], "within": sub["within"],
            "vs_input": sub.get("vs_input"), "changed": changed,
            "changed_text": " and ".join(changed) if changed else "none",
            "verdict": {"same": "holds", "less certain": "holds but is less certain without them (the smaller "
                        "sample's interval contains the value on all images but also a cut-off)",
                        "changed": "changes without them"}[max(status.values(), key=_CHANGES.index)]}


_CHANGES = ("same", "less certain", "changed")


def _change(old: str, new: str, old_e: dict, new_e: dict) -> str:
    """How a verdict word moved on a subset: "same"; "less certain" when the subset's word is
    undecided (its interval contains a cut-off) and its interval still contains the value on all
    images; otherwise "changed"."""
    if old == new:
        return "same"
    undecided = new.startswith("between ") or new.startswith("not shown")
    return "less certain" if undecided and new_e["lo"] <= old_e["value"] <= new_e["hi"] else "changed"


def _get(d: dict, key: tuple):
    for k in key:
        d = d.get(k, {}) if isinstance(d, dict) else None
    return d


def mean_map_figure(maps: np.ndarray, groups: np.ndarray, images: np.ndarray, method: str, by: str = "target"):
    """Mean image and mean |map| per group (``by`` names the grouping in the panel titles)."""
    absmaps = np.abs(similarity.to_2d(maps))
    row = []
    for k, c in enumerate(CLASSES):
        sel = groups == k
        name = f"target {c}" if by == "target" else c
        if not sel.any():
            continue
        row.append(plots.Panel(images[sel].mean(0), "gray", f"mean image, {name}"))
        row.append(plots.Panel(absmaps[sel].mean(0), "heat", f"mean {method}, {name}", clip=99.5))
    return plots.panel_grid(plots.chunk(row, plots.MAX_COLS))


GRID_PER_CLASS = 2   # report images per class in the grids that compare settings or methods (Q3.4 baselines,
                     # Q4.4 IG beside Grad-CAM, Q5 models): four images print at full size in one block


def grid_images(rp: np.ndarray, labels: np.ndarray, per_class: int) -> np.ndarray:
    """The first ``per_class`` report positions ``rp`` of each class (NORMAL first), in order."""
    return np.concatenate([rp[labels[rp] == c][:per_class] for c in range(len(CLASSES))])


def mask_figure(images: np.ndarray, masks: np.ndarray, border_frac: float):
    border = regions.border_zone(masks.shape[1:], border_frac)
    cells = [plots.Panel(m.astype(float), "mask", under=im) for im, m in zip(images, masks)]
    cells.append(plots.Panel(border.astype(float), "mask", "border zone", under=images[0]))
    return plots.panel_grid(plots.chunk(cells, plots.MAX_COLS))


def caption_rows(names, labels, probs, targets, threshold: float) -> list[str]:
    """One title per report image: the full file name (never cut; the figure wraps it), true label,
    P(PNEUMONIA), MISSED when the threshold decides wrongly, and the explained target."""
    out = []
    for name, y, pr, t in zip(names, labels, probs, targets):
        wrong = (pr >= threshold) != (y == 1)
        out.append(f"{Path(str(name)).name}: {CLASSES[y]}, P(pn)={pr:.2f}"
                   f"{', MISSED' if wrong else ''}, target {CLASSES[t]}")
    return out

"""Measures shared by Q3 (IG) and Q4 (Grad-CAM): regions, consistency, mean maps, figures.

One code path for both methods, so their numbers are comparable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import plots, regions, similarity
from xaikit.data import CLASSES

from .context import lib

SOURCES = lib("regions", "similarity", "plots") + [Path(__file__)]
BORDER_FRAC = 0.1     # the border zone: this share of the size from each edge
LUNG_MARGIN = 0.2      # "concentrated in the lungs" when lung share >= (1 + margin) x lung area
CONSISTENCY_CELLS = 16  # maps are average-pooled to 16 x 16 cells before rank correlation
HIGH, MODERATE = 0.5, 0.2


def masks_for(images: np.ndarray) -> np.ndarray:
    """Lung masks of float images N x H x W x 1."""
    return np.stack([regions.lung_mask(im[..., 0]) for im in images])


def region_numbers(maps: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> dict:
    """Lung and border shares per class and overall, with verdict words."""
    border = regions.border_zone(masks.shape[1:], BORDER_FRAC)
    out = {}
    for name, sel in (("all", np.ones(len(labels), bool)), *((c, labels == k) for k, c in enumerate(CLASSES))):
        r = regions.region_shares(maps[sel], masks[sel], border)
        out[name] = {"lung_share": r.lung_share, "lung_area": r.lung_area, "lung_ratio": r.lung_ratio,
                     "border_share": r.border_share, "border_area": r.border_area,
                     "border_ratio": r.border_ratio, "n": r.n}
    ratio = out["all"]["lung_ratio"]
    out["lung_verdict"] = ("concentrated in the lung fields" if ratio >= 1 + LUNG_MARGIN else
                           "not concentrated in the lung fields")
    out["border_verdict"] = ("over-represented in the image border" if out["all"]["border_ratio"] > 1
                             else "under-represented in the image border")
    out["margin"] = LUNG_MARGIN
    out["border_frac"] = BORDER_FRAC
    return out


def region_table(r: dict) -> pd.DataFrame:
    """The numbers of :func:`region_numbers` as a table, one row per image group."""
    return pd.DataFrame([{"images": k, "n": r[k]["n"], "lung share": r[k]["lung_share"],
                          "lung area": r[k]["lung_area"], "lung ratio": r[k]["lung_ratio"],
                          "border share": r[k]["border_share"], "border area": r[k]["border_area"],
                          "border ratio": r[k]["border_ratio"]} for k in ("all",) + CLASSES])


def consistency_numbers(maps: np.ndarray, labels: np.ndarray) -> dict:
    pooled = similarity.pool(np.abs(similarity.to_2d(maps)), CONSISTENCY_CELLS)
    c = similarity.consistency(pooled, labels)
    within = (c.within_a + c.within_b) / 2
    word = "high" if within >= HIGH else "moderate" if within >= MODERATE else "low"
    return {"within_NORMAL": c.within_a, "within_PNEUMONIA": c.within_b, "across": c.across,
            "n_NORMAL": c.n_a, "n_PNEUMONIA": c.n_b, "within_mean": within, "level": word,
            "class_specific": bool(within > c.across + 0.05), "cells": CONSISTENCY_CELLS,
            "high": HIGH, "moderate": MODERATE}


def mean_map_figure(maps: np.ndarray, labels: np.ndarray, images: np.ndarray, method: str):
    absmaps = np.abs(similarity.to_2d(maps))
    row = []
    for k, c in enumerate(CLASSES):
        row.append(plots.Panel(images[labels == k].mean(0), "gray", f"mean {c} image"))
        row.append(plots.Panel(absmaps[labels == k].mean(0), "heat", f"mean {method} ({c})", clip=99.5))
    return plots.panel_grid([row], cell=2.0)


def mask_figure(images: np.ndarray, masks: np.ndarray):
    border = regions.border_zone(masks.shape[1:], BORDER_FRAC)
    rows = [[plots.Panel(m.astype(float), "mask", under=im) for im, m in zip(images[i:i + 5], masks[i:i + 5])]
            for i in range(0, len(images), 5)]
    rows.append([plots.Panel(border.astype(float), "mask", "border zone", under=images[0])])
    return plots.panel_grid(rows, cell=1.6)


def caption_rows(names, labels, probs, targets) -> list[str]:
    out = []
    for name, y, pr, t in zip(names, labels, probs, targets):
        wrong = (pr >= 0.5) != (y == 1)
        out.append(f"{Path(str(name)).name[:20]}\n{CLASSES[y]} P(pn)={pr:.2f}"
                   f"{' MISSED' if wrong else ''}\ntarget {CLASSES[t]}")
    return out

"""Deletion and insertion curves (Petsiuk et al. 2018, RISE) and their areas.

Pixels (or cells of a coarse grid) are removed in the order a map ranks them. What a
removed pixel becomes is the caller's choice (``fill`` for deletion, ``start`` for the
image insertion begins from); Rong et al. (2022, ROAD) show that this choice can favour a
method whose own reference image it matches, so the report uses a fill that is not IG's
baseline and ranks every map at the same resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from .similarity import pool, to_2d


@dataclass(frozen=True)
class Curves:
    fractions: np.ndarray     # share of pixels deleted / inserted, 0..1
    deletion: np.ndarray      # N x steps+1: P(target) as the most important pixels are removed
    insertion: np.ndarray     # N x steps+1: P(target) as they are put into the start image
    cells: int                # ranking resolution: cells per side, 0 = pixels

    @property
    def deletion_auc(self) -> np.ndarray:
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        return np.trapezoid(self.insertion, self.fractions, axis=1)


def unit_ranks(m: np.ndarray, cells: int = 0) -> tuple[np.ndarray, int]:
    """(H x W rank of each pixel's unit, number of units) for one 2-D map, highest first.

    ``cells`` = 0 ranks pixels; otherwise the map is average-pooled to cells x cells and every
    pixel takes the rank of its cell, so whole cells are removed together. Ties keep the
    scan order (stable sort), so a constant map removes pixels from the top left.
    """
    h, w = m.shape
    if cells <= 0:
        order = np.argsort(-m.ravel(), kind="stable")
        rank = np.empty(h * w, int)
        rank[order] = np.arange(h * w)
        return rank.reshape(h, w), h * w
    if cells > min(h, w):
        raise ValueError(f"cells expects <= {min(h, w)} for {h} x {w} maps, got {cells}")
    pooled = pool(m[None], cells)[0]
    order = np.argsort(-pooled.ravel(), kind="stable")
    cell_rank = np.empty(cells * cells, int)
    cell_rank[order] = np.arange(cells * cells)
    rows, cols = np.arange(h) * cells // h, np.arange(w) * cells // w      # 0 .. cells - 1
    return cell_rank.reshape(cells, cells)[rows[:, None], cols[None, :]], cells * cells


def deletion_insertion(model: keras.Model, images: np.ndarray, maps: np.ndarray, target, *,
                       fill: np.ndarray, start: np.ndarray, steps: int = 16, cells: int = 0,
                       progress=None) -> Curves:
    """Curves for N images (N x H x W x C, float) ranked by N x H x W ``maps``.

    Deletion replaces the top-ranked units of each image by ``fill``; insertion begins from
    ``start`` and puts the top-ranked original units back. ``fill`` and ``start`` are one
    image (H x W x C) or one per image. ``model`` outputs probabilities; the curves follow
    P(``target``). ``progress`` (optional) is called with 1 after each image.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images expects N x H x W x C, got shape {images.shape}")
    maps = to_2d(np.asarray(maps, np.float64)).astype(np.float64)
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps expect shape {images.shape[:3]}, got {maps.shape}")
    fill = np.broadcast_to(np.asarray(fill, np.float32), images.shape)
    start = np.broadcast_to(np.asarray(start, np.float32), images.shape)
    if steps < 1:
        raise ValueError(f"steps expects >= 1, got {steps}")
    target = np.broadcast_to(np.asarray(target, int), (len(images),))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    n = len(images)
    dele = np.zeros((n, steps + 1))
    ins = np.zeros((n, steps + 1))
    for i in range(n):
        rank, units = unit_ranks(maps[i], cells)
        keep = np.stack([rank >= int(round(f * units)) for f in fractions])[..., None]
        deleted = np.where(keep, images[i][None], fill[i][None])
        inserted = np.where(keep, start[i][None], images[i][None])
        batch = np.concatenate([deleted, inserted]).astype(np.float32)
        probs = np.asarray(model.predict(batch, batch_size=len(batch), verbose=0))[:, target[i]]
        dele[i], ins[i] = probs[:steps + 1], probs[steps + 1:]
        if progress is not None:
            progress(1)
    return Curves(fractions, dele, ins, cells)

"""Deletion and insertion curves (Petsiuk et al. 2018, RISE) and their areas.

Pixels (or cells of a coarse grid) are removed in the order a map ranks them. What a
removed pixel becomes is the caller's choice: a fixed image (``fill`` for deletion, ``start``
for the image insertion begins from) or an imputer such as ROAD's noisy linear imputation
(``road_imputer``; Rong et al. 2022), for which deletion at fraction f imputes the top-f units
and insertion keeps the top-f units and imputes all others (ROAD's LeRF complement). Rong et
al. show that a fixed fill can favour a method whose own reference image it matches, so the
report ranks under more than one fill, among them one that keeps fine detail: per image, another
image of the same class (``same_class_donors`` picks it; pass the donors as ``fill`` and ``start``),
and ranks every map at the same resolution, no finer than the coarsest map's grid (``ranking_cells``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from . import forward
from .road import NOISE, noisy_linear_impute
from .similarity import pool, to_2d

# (images S x H x W x C, removed S x H x W booleans, seed) -> S x H x W x C with removed pixels replaced
Imputer = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def road_imputer(fallback: np.ndarray | float, noise: float = NOISE) -> Imputer:
    """ROAD's noisy linear imputation (``xaikit.road``); groups of removed pixels with no kept
    neighbour (a fully removed image) take ``fallback`` plus the noise."""
    def impute(images: np.ndarray, removed: np.ndarray, seed: int) -> np.ndarray:
        return noisy_linear_impute(images, removed, seed=seed, noise=noise, fallback=fallback)
    return impute


def same_class_donors(labels: np.ndarray, wanted: np.ndarray, seed: int) -> np.ndarray:
    """Indices into a pool of images with class ``labels``: for each entry of ``wanted`` (a class per
    explained image) one member of the pool of that class, drawn at random from ``seed`` (with
    replacement, independently per image). Their images, as ``fill`` and ``start`` of
    :func:`deletion_insertion`, make deleted cells take another image's pixels of the same class."""
    labels, wanted = np.asarray(labels).ravel(), np.asarray(wanted).ravel()
    rng = np.random.default_rng(seed)
    out = np.empty(len(wanted), int)
    for k in np.unique(wanted):
        members = np.flatnonzero(labels == k)
        if not len(members):
            raise ValueError(f"same_class_donors expects a pool image of class {k}, got none")
        at = np.flatnonzero(wanted == k)
        out[at] = rng.choice(members, size=len(at))
    return out


def ranking_cells(requested: int, grid: int) -> int:
    """Cells per side at which to rank maps, one of them made on a ``grid`` x ``grid`` feature map
    (Grad-CAM): ``requested``, or the grid when that is coarser, so no map is ranked finer than it
    is made (a finer ranking splits each of its cells by upsampling alone)."""
    if requested < 1 or grid < 1:
        raise ValueError(f"ranking_cells expects requested >= 1 and grid >= 1, got {requested} and {grid}")
    return min(int(requested), int(grid))


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
                       fill: np.ndarray | None = None, start: np.ndarray | None = None,
                       impute: Imputer | None = None, seed: int = 0, steps: int = 16, cells: int = 0,
                       progress=None) -> Curves:
    """Curves for N images (N x H x W x C, float) ranked by N x H x W ``maps``.

    Deletion replaces the top-ranked units of each image by ``fill``; insertion begins from
    ``start`` and puts the top-ranked original units back. ``fill`` and ``start`` are one
    image (H x W x C) or one per image. With ``impute`` instead (no fill, no start), deletion
    imputes the top-ranked units and insertion imputes all but them; image i's imputations
    draw from ``seed`` and i. ``model`` outputs probabilities; the curves follow
    P(``target``). ``progress`` (optional) is called with 1 after each image.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images expects N x H x W x C, got shape {images.shape}")
    maps = to_2d(np.asarray(maps, np.float64)).astype(np.float64)
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps expect shape {images.shape[:3]}, got {maps.shape}")
    given = (fill is not None, start is not None, impute is not None)
    if given not in ((True, True, False), (False, False, True)):
        raise ValueError("deletion_insertion expects either fill and start, or impute, "
                         f"got fill={fill is not None}, start={start is not None}, impute={impute is not None}")
    if impute is None:
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
        if impute is None:
            deleted = np.where(keep, images[i][None], fill[i][None])
            inserted = np.where(keep, start[i][None], images[i][None])
            batch = np.concatenate([deleted, inserted]).astype(np.float32)
        else:
            removed = np.concatenate([~keep, keep])[..., 0]
            image_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            batch = impute(np.broadcast_to(images[i], removed.shape + images.shape[3:]), removed,
                           image_seed).astype(np.float32)
        probs = forward.predict(model, batch, batch_size=len(batch))[:, target[i]]
        dele[i], ins[i] = probs[:steps + 1], probs[steps + 1:]
        if progress is not None:
            progress(1)
    return Curves(fractions, dele, ins, cells)


def sign_flip_p(diff: np.ndarray, *, n_perm: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of a paired mean difference being 0: the observed |mean| against
    ``n_perm`` seeded random sign flips of the per-image differences (exact over all 2^n flips
    when that is no more than ``n_perm``), counting the observed one (p >= 1 / (n_perm + 1))."""
    d = np.asarray(diff, np.float64).ravel()
    if len(d) < 1:
        raise ValueError(f"sign_flip_p expects >= 1 differences, got {len(d)}")
    observed = abs(d.mean())
    if 2 ** len(d) <= n_perm:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
        return float(np.mean(np.abs(signs @ d) / len(d) >= observed - 1e-12))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_perm, len(d)))
    hits = np.sum(np.abs(signs @ d) / len(d) >= observed - 1e-12)
    return float((hits + 1) / (n_perm + 1))

"""Deletion and insertion curves (Petsiuk et al. 2018, RISE) and their areas."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Curves:
    fractions: np.ndarray     # share of pixels deleted / inserted, 0..1
    deletion: np.ndarray      # N x steps+1: P(target) as the most important pixels are removed
    insertion: np.ndarray     # N x steps+1: P(target) as they are inserted into a blurred copy

    @property
    def deletion_auc(self) -> np.ndarray:
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        return np.trapezoid(self.insertion, self.fractions, axis=1)


def deletion_insertion(model: keras.Model, images: np.ndarray, maps: np.ndarray, target,
                       *, steps: int = 16, blur_sigma: float = 8.0, progress=None) -> Curves:
    """RISE curves for N images (N x H x W x C, float) ranked by N x H x W ``maps``.

    Deletion replaces the top-ranked pixels by 0; insertion starts from a Gaussian-blurred
    copy and puts the top-ranked original pixels back. ``model`` outputs probabilities.
    ``progress`` (optional) is called with 1 after each image.
    """
    images = np.asarray(images, np.float32)
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 4:
        maps = maps.sum(-1)
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps expect shape {images.shape[:3]}, got {maps.shape}")
    target = np.broadcast_to(np.asarray(target, int), (len(images),))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    n, h, w, _ = images.shape
    npx = h * w
    dele = np.zeros((n, steps + 1))
    ins = np.zeros((n, steps + 1))
    for i in range(n):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        rank = np.empty(npx, int)
        rank[order] = np.arange(npx)
        rank = rank.reshape(h, w)
        keep = np.stack([rank >= int(round(f * npx)) for f in fractions])[..., None]
        blurred = ndimage.gaussian_filter(images[i], sigma=(blur_sigma, blur_sigma, 0))
        deleted = np.where(keep, images[i][None], 0.0)
        inserted = np.where(keep, blurred[None], images[i][None])
        batch = np.concatenate([deleted, inserted]).astype(np.float32)
        probs = np.asarray(model.predict(batch, batch_size=len(batch), verbose=0))[:, target[i]]
        dele[i], ins[i] = probs[:steps + 1], probs[steps + 1:]
        if progress is not None:
            progress(1)
    return Curves(fractions, dele, ins)

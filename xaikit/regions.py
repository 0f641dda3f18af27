"""Where attribution falls: a heuristic lung-field mask, an image-border zone, shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import filters, measure, morphology


def border_zone(shape: tuple[int, int], frac: float = 0.1) -> np.ndarray:
    """Boolean mask of the frame within ``frac`` of each edge (letters, markers, devices)."""
    h, w = shape
    m = np.zeros((h, w), bool)
    bh, bw = max(1, int(round(h * frac))), max(1, int(round(w * frac)))
    m[:bh], m[-bh:], m[:, :bw], m[:, -bw:] = True, True, True, True
    return m


def _prior(shape: tuple[int, int]) -> np.ndarray:
    """Two ellipses where lungs usually lie on a frontal chest X-ray."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), bool)
    for cx in (0.3, 0.7):
        m |= ((xx / w - cx) / 0.16) ** 2 + ((yy / h - 0.48) / 0.3) ** 2 <= 1.0
    return m


def lung_mask(image: np.ndarray) -> np.ndarray:
    """Heuristic lung-field mask of one 2-D image in [0, 1].

    Smooth, threshold dark pixels (Otsu), drop dark regions that touch the image border
    (air around the body), keep the two largest remaining regions inside the central band,
    close and fill them. Falls back to an elliptical prior when this finds under 8% or over
    60% of the image.
    """
    img = np.asarray(image, np.float64)
    if img.ndim == 3:
        img = img.mean(-1)
    h, w = img.shape
    smooth = filters.gaussian(img, sigma=max(1.0, h / 64))
    dark = smooth < filters.threshold_otsu(smooth)
    band = np.zeros_like(dark)
    band[int(0.08 * h):int(0.92 * h), int(0.08 * w):int(0.92 * w)] = True
    dark &= band
    dark = ndimage.binary_opening(dark, structure=morphology.disk(max(1, h // 64)))
    labels = measure.label(dark)
    regions = sorted(measure.regionprops(labels), key=lambda r: r.area, reverse=True)
    mask = np.zeros_like(dark)
    for r in regions[:2]:
        minr, minc, maxr, maxc = r.bbox
        if minr <= int(0.08 * h) or maxr >= int(0.92 * h) - 1:
            continue
        mask |= labels == r.label
    mask = ndimage.binary_closing(mask, structure=morphology.disk(max(1, h // 32)))
    mask = ndimage.binary_fill_holes(mask)
    share = mask.mean()
    if share < 0.08 or share > 0.6:
        return _prior((h, w))
    return mask


@dataclass(frozen=True)
class RegionShares:
    lung_share: float        # mean share of |attribution| inside the lung mask
    lung_area: float         # mean share of pixels inside the lung mask
    border_share: float      # mean share of |attribution| in the border zone
    border_area: float
    n: int

    @property
    def lung_ratio(self) -> float:
        return self.lung_share / self.lung_area if self.lung_area else float("nan")

    @property
    def border_ratio(self) -> float:
        return self.border_share / self.border_area if self.border_area else float("nan")


def region_shares(maps: np.ndarray, masks: np.ndarray, border: np.ndarray) -> RegionShares:
    """Share of absolute attribution mass inside each mask, against the mask's area share."""
    maps = np.abs(np.asarray(maps, np.float64))
    if maps.ndim == 4:
        maps = maps.sum(-1)
    if maps.shape != masks.shape:
        raise ValueError(f"maps and masks differ in shape: {maps.shape} vs {masks.shape}")
    total = maps.reshape(len(maps), -1).sum(1)
    total = np.where(total > 0, total, 1.0)
    lung = (maps * masks).reshape(len(maps), -1).sum(1) / total
    bord = (maps * border[None]).reshape(len(maps), -1).sum(1) / total
    return RegionShares(float(lung.mean()), float(masks.mean()), float(bord.mean()),
                        float(border.mean()), len(maps))

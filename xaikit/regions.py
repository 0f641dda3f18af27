"""Where attribution falls: a heuristic lung-field mask, an image-border zone, shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import draw, filters, measure, morphology
from skimage.transform import resize

MIN_SHARE, MAX_SHARE = 0.08, 0.6     # a mask outside these shares of the image falls back to the prior


UPSAMPLING = ("centre-aligned bilinear: each cell's value sits at the centre of the image block it covers, "
              "edge cells held constant out to the border")


def upsample(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of N x h x w maps to N x H x W with half-pixel (centre) alignment.

    Cell (i, j) of an h-row map covers rows [i H/h, (i+1) H/h) of the image; its value is placed at
    that block's centre and interpolated linearly in between; beyond the outermost cell centres the
    edge value is held (no extrapolation). A corner-aligned zoom (scipy ``zoom``, tf-keras-vis's
    ``expand_cam``) instead pins the outer cells' centres to the image corners, which moves every cell
    centre outwards by up to half a block.
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3:
        raise ValueError(f"upsample expects N x h x w maps, got shape {maps.shape}")
    out = np.empty((len(maps), *shape))
    for k, m in enumerate(maps):
        out[k] = resize(m, shape, order=1, mode="edge", anti_aliasing=False)
    return out


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


@dataclass(frozen=True)
class LungMask:
    mask: np.ndarray        # bool H x W
    fallback: bool          # True when the elliptical prior was used


def segment_lungs(image: np.ndarray) -> LungMask:
    """Heuristic lung-field mask of one 2-D image in [0, 1].

    Smooth, threshold dark pixels (Otsu), keep them inside the central band, open, and keep
    the two largest regions that do not touch the band's top or bottom (air around the
    body, skipped however large). Each kept region is one lung's aerated part; opacities are bright, so the lung
    field is that region's convex hull (which takes back consolidations at its edge and
    holes inside it). Falls back to an elliptical prior when the result covers under
    ``MIN_SHARE`` or over ``MAX_SHARE`` of the image.
    """
    img = np.asarray(image, np.float64)
    if img.ndim == 3:
        img = img.mean(-1)
    if img.ndim != 2:
        raise ValueError(f"image expects H x W (or H x W x C), got shape {np.shape(image)}")
    h, w = img.shape
    smooth = filters.gaussian(img, sigma=max(1.0, h / 64))
    if np.ptp(smooth) == 0:
        return LungMask(_prior((h, w)), True)
    dark = smooth < filters.threshold_otsu(smooth)
    band = np.zeros_like(dark)
    band[int(0.08 * h):int(0.92 * h), int(0.08 * w):int(0.92 * w)] = True
    dark &= band
    dark = ndimage.binary_opening(dark, structure=morphology.disk(max(1, h // 64)))
    labels = measure.label(dark)
    regions = sorted(measure.regionprops(labels), key=lambda r: r.area, reverse=True)
    mask = np.zeros_like(dark)
    kept = 0
    for r in regions:                  # the two largest regions that stay off the band's top and bottom
        minr, minc, maxr, maxc = r.bbox
        if minr <= int(0.08 * h) or maxr >= int(0.92 * h) - 1:
            continue                   # air above the shoulders or below the diaphragm
        mask |= morphology.convex_hull_image(labels == r.label)
        kept += 1
        if kept == 2:
            break
    share = mask.mean()
    if share < MIN_SHARE or share > MAX_SHARE:
        return LungMask(_prior((h, w)), True)
    return LungMask(mask, False)


def polygon_mask(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the union of polygons given as [[x, y], ...] in [0, 1] image coordinates
    (x to the right, y down), rasterised at ``shape``."""
    h, w = shape
    m = np.zeros((h, w), bool)
    for poly in polygons:
        p = np.asarray(poly, np.float64)
        if p.ndim != 2 or p.shape[1] != 2 or len(p) < 3:
            raise ValueError(f"polygon expects >= 3 points [x, y], got shape {p.shape}")
        if p.min() < 0 or p.max() > 1:
            raise ValueError(f"polygon expects coordinates in [0, 1], got range [{p.min()}, {p.max()}]")
        rr, cc = draw.polygon(p[:, 1] * h, p[:, 0] * w, shape=(h, w))
        m[rr, cc] = True
    return m


def atlas_mask(fields, shape: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """Majority vote of hand-drawn lung fields: ``fields`` holds one list of polygons per image
    (see :func:`polygon_mask`); a pixel is lung when at least ``threshold`` of them cover it."""
    if len(fields) == 0:
        raise ValueError("atlas_mask expects at least one image's lung fields, got none")
    votes = np.mean([polygon_mask(polys, shape) for polys in fields], axis=0)
    return votes >= threshold


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A & B| / (|A| + |B|) of two boolean masks (1 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


def image_shares(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image: the share of absolute attribution mass inside its mask (N,).

    ``masks`` is N x H x W, or one H x W mask for all images. A map without mass shares 0.
    """
    maps = np.abs(np.asarray(maps, np.float64))
    if maps.ndim == 4:
        maps = maps.sum(-1)
    masks = np.broadcast_to(np.asarray(masks, bool), maps.shape) if np.ndim(masks) == 2 else np.asarray(masks, bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps and masks differ in shape: {maps.shape} vs {masks.shape}")
    total = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * masks).reshape(len(maps), -1).sum(1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


ZONES = ("right_lung", "left_lung", "mediastinum", "above", "below", "lateral", "border")
ZONE_LABELS = {   # the patient's right lung lies on the image's left on a frontal (PA) film
    "right_lung": "right lung (image left)", "left_lung": "left lung (image right)",
    "mediastinum": "mediastinum and heart", "above": "above the lungs (neck, shoulders)",
    "below": "below the lungs (diaphragm, abdomen)", "lateral": "lateral chest wall",
    "border": "border strip (letters, markers)"}
ZONE_RULE = ("the lung atlas split at the lung-free column nearest the centre (the patient's right lung is the image's "
             "left on a frontal PA film); every other pixel goes to the side of the lungs it is nearest to: above or "
             "below the lung in its column, or beside its half's lung in its row, medially (mediastinum and heart) or "
             "laterally (lateral chest wall); the border strip takes precedence over every zone")


def _midline(lungs: np.ndarray) -> int:
    """The column that splits the two lungs: in the central half, the column with the fewest lung
    pixels (the nearest to the centre among ties)."""
    w = lungs.shape[1]
    cols = np.arange(w // 4, w - w // 4)
    count = lungs[:, cols].sum(0)
    best = cols[count == count.min()]
    return int(best[np.argmin(np.abs(best - (w - 1) / 2))])


def zones(lungs: np.ndarray, border: np.ndarray) -> dict[str, np.ndarray]:
    """Named anatomical zones of a frontal chest X-ray from a lung mask and a border zone, as an
    ordered dict of disjoint boolean masks that cover the image (keys :data:`ZONES`).

    The lung mask splits at :func:`_midline` into the patient's right lung (image left) and left
    lung (image right). Every other pixel outside ``border`` goes to the nearest of four lung
    boundaries (distance in pixels; ties in this order): lung below it in its column -> "above";
    lung above it -> "below"; in its row, on the medial side of its half's lung -> "mediastinum";
    on the outer side -> "lateral". A pixel with neither (no lung in its column nor in its row's
    half) goes above or below by the lungs' middle row. ``border`` takes precedence.
    """
    lungs, border = np.asarray(lungs, bool), np.asarray(border, bool)
    if lungs.shape != border.shape or lungs.ndim != 2:
        raise ValueError(f"zones expects two H x W masks of one shape, got {lungs.shape} and {border.shape}")
    if not lungs.any():
        raise ValueError("zones expects a lung mask with at least one pixel, got an empty mask")
    h, w = lungs.shape
    mid = _midline(lungs)
    rows, cols = np.mgrid[0:h, 0:w]
    inf = np.inf
    has_col = lungs.any(0)[None]
    top = np.where(has_col, lungs.argmax(0)[None], h)
    bottom = np.where(has_col, h - 1 - lungs[::-1].argmax(0)[None], -1)
    dist = np.full((4, h, w), inf)                 # above, below, mediastinum, lateral
    dist[0] = np.where(has_col & (rows < top), top - rows, inf)
    dist[1] = np.where(has_col & (rows > bottom), rows - bottom, inf)
    for lo, hi in ((0, mid), (mid, w)):
        half = np.zeros_like(lungs)
        half[:, lo:hi] = lungs[:, lo:hi]
        has_row = half.any(1)[:, None]
        first = np.where(has_row, half.argmax(1)[:, None], w)
        last = np.where(has_row, w - 1 - half[:, ::-1].argmax(1)[:, None], -1)
        inside = (cols >= lo) & (cols < hi) & has_row
        left, right = inside & (cols < first), inside & (cols > last)
        outer, inner = (left, right) if lo == 0 else (right, left)
        dist[2] = np.where(inner, np.where(left, first - cols, cols - last), dist[2])
        dist[3] = np.where(outer, np.where(left, first - cols, cols - last), dist[3])
    pick = np.argmin(dist, 0)
    lung_rows = np.flatnonzero(lungs.any(1))
    middle = (lung_rows[0] + lung_rows[-1]) / 2
    pick = np.where(np.isinf(dist.min(0)), np.where(rows < middle, 0, 1), pick)
    rest = ~lungs & ~border
    out = {"right_lung": lungs & (cols < mid) & ~border, "left_lung": lungs & (cols >= mid) & ~border,
           "border": border.copy()}
    for k, name in enumerate(("above", "below", "mediastinum", "lateral")):
        out[name] = rest & (pick == k)
    return {z: out[z] for z in ZONES}

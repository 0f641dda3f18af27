"""Figure files: rasterised at the resolution they are printed at, in the lighter of two encodings.

A figure is printed at its own size in inches, shrunk to fit the text block (7.0 x 8.6 in,
A4 with the margins of report.css). It is rasterised at 130 dpi, or less when shrinking would
print it above ``PRINT_DPI``; the file's dpi records the rasterisation, so the printed size
(``printed_width``) does not depend on it. Photo-like figures (grids of X-rays and maps) are
stored as JPEG when a JPEG is much smaller and indistinguishable (PSNR >= 40 dB against the
lossless render; 4:4:4 chroma); charts stay PNG (without the alpha channel matplotlib adds,
which WeasyPrint would embed as a second image). WeasyPrint copies a JPEG into the PDF as it
is, but decodes and recompresses every PNG (a palette PNG too, expanded to RGB), so a JPEG
also renders faster.

A figure that would print taller than ``SPLIT_HEIGHT_IN`` (a grid of maps, say) is printed at
its full width and stored as horizontal strips cut at the blank rows between its rows of
panels; the report prints the strips one below the other, so a grid that does not fit in
what is left of a page starts there and continues on the next instead of leaving the page
half empty (the caption follows the last strip).
"""

from __future__ import annotations

import io

import numpy as np

MAX_WIDTH_IN, MAX_HEIGHT_IN = 7.0, 8.6   # the text block, with room for a caption
SCREEN_DPI = 130                         # the nominal resolution (and the HTML's pixel size)
PRINT_DPI = 200                          # never rasterise finer than this on paper
JPEG_QUALITIES = (92, 95, 97)
MIN_PSNR_DB = 40.0
MAX_JPEG_SHARE = 0.7                     # a JPEG must save at least 30% to be chosen
SPLIT_HEIGHT_IN = 0.45 * MAX_HEIGHT_IN   # printed taller than this: cut into strips at blank rows
MIN_STRIP_IN = 0.9                       # ... none shorter than this (printed inches)
BLANK_LEVEL, MIN_GAP_PX = 250, 2         # a blank row: every pixel this white, in runs of >= 2 rows


def fit_scale(width_in: float, height_in: float) -> float:
    """Factor (<= 1) that fits a figure of this size into the text block."""
    return min(1.0, MAX_WIDTH_IN / width_in, MAX_HEIGHT_IN / height_in)


def width_scale(width_in: float) -> float:
    """Factor (<= 1) that fits a figure's width into the text block (a split figure's height
    needs no fitting: its strips flow across pages)."""
    return min(1.0, MAX_WIDTH_IN / width_in)


def splits(width_in: float, height_in: float) -> bool:
    """Whether a figure of this size is printed as strips: taller than ``SPLIT_HEIGHT_IN`` at its
    printed width, so that a page never stays half empty because the whole grid did not fit."""
    return height_in * width_scale(width_in) > SPLIT_HEIGHT_IN


def raster_dpi(width_in: float, height_in: float) -> int:
    """Rasterisation dpi: 130, lowered so that the printed resolution stays <= PRINT_DPI."""
    scale = width_scale(width_in) if splits(width_in, height_in) else fit_scale(width_in, height_in)
    return int(min(SCREEN_DPI, PRINT_DPI * scale))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _encode_rgb(rgb, dpi: int) -> tuple[bytes, str]:
    """(bytes, suffix) of one RGB image: PNG, or JPEG when much smaller and indistinguishable."""
    png = io.BytesIO()
    rgb.save(png, format="PNG", dpi=(dpi, dpi))
    best = (png.getvalue(), ".png")
    reference = np.asarray(rgb)
    from PIL import Image
    for quality in JPEG_QUALITIES:
        jpg = io.BytesIO()
        rgb.save(jpg, format="JPEG", quality=quality, subsampling=0, dpi=(dpi, dpi))
        data = jpg.getvalue()
        if len(data) > MAX_JPEG_SHARE * len(best[0]):
            break                  # higher qualities only grow
        with Image.open(io.BytesIO(data)) as back:
            if psnr(reference, np.asarray(back.convert("RGB"))) >= MIN_PSNR_DB:
                best = (data, ".jpg")
                break
    return best


def cut_rows(pixels: np.ndarray, min_strip_px: int) -> list[int]:
    """Rows at which to cut an H x W x 3 image into strips: the middle of each run of at least
    ``MIN_GAP_PX`` blank rows, taken greedily so that every strip (the last one too) is at least
    ``min_strip_px`` high. Empty when the image has no such place (it stays whole)."""
    blank = (np.asarray(pixels) >= BLANK_LEVEL).all(axis=(1, 2)) if np.ndim(pixels) == 3 else \
        (np.asarray(pixels) >= BLANK_LEVEL).all(axis=1)
    h = len(blank)
    runs, start = [], None
    for i, b in enumerate(np.append(blank, False)):
        if b and start is None:
            start = i
        elif not b and start is not None:
            if i - start >= MIN_GAP_PX and start > 0 and i < h:   # not the outer margins
                runs.append((start + i) // 2)
            start = None
    cuts, last = [], 0
    for c in runs:
        if c - last >= min_strip_px and h - c >= min_strip_px:
            cuts.append(c)
            last = c
    return cuts


def encode_strips(fig) -> list[tuple[bytes, str]]:
    """The figure's file(s): one (bytes, suffix) for most figures; for a figure taller than
    ``SPLIT_HEIGHT_IN`` at its printed width, one per horizontal strip, cut at blank rows
    between rows of panels (see :func:`cut_rows`), printed one below the other at the same width."""
    from PIL import Image

    w_in, h_in = fig.get_size_inches()
    dpi = raster_dpi(w_in, h_in)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 0})   # decoded at once: not worth packing
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        rgb = im.convert("RGB")
    if not splits(w_in, h_in):
        return [_encode_rgb(rgb, dpi)]
    min_px = int(MIN_STRIP_IN / width_scale(w_in) * dpi)
    edges = [0] + cut_rows(np.asarray(rgb), min_px) + [rgb.height]
    return [_encode_rgb(rgb.crop((0, top, rgb.width, bottom)), dpi) for top, bottom in zip(edges, edges[1:])]


def printed_width(path) -> float:
    """Printed width in inches of a figure file: its pixel size at its own dpi (130 when it
    records none), shrunk to fit the text block. Small charts stay small."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            dpi = float((im.info.get("dpi") or (SCREEN_DPI,))[0]) or SCREEN_DPI
            w, h = im.width / dpi, im.height / dpi
    except OSError:
        return 6.0
    return round(w * fit_scale(w, h), 2)

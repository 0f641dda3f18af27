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


def fit_scale(width_in: float, height_in: float) -> float:
    """Factor (<= 1) that fits a figure of this size into the text block."""
    return min(1.0, MAX_WIDTH_IN / width_in, MAX_HEIGHT_IN / height_in)


def raster_dpi(width_in: float, height_in: float) -> int:
    """Rasterisation dpi: 130, lowered so that the printed resolution stays <= PRINT_DPI."""
    return int(min(SCREEN_DPI, PRINT_DPI * fit_scale(width_in, height_in)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def encode(fig) -> tuple[bytes, str]:
    """(file bytes, suffix ".png" or ".jpg") of a matplotlib figure; see the module doc."""
    from PIL import Image

    w_in, h_in = fig.get_size_inches()
    dpi = raster_dpi(w_in, h_in)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        rgb = im.convert("RGB")
    png = io.BytesIO()
    rgb.save(png, format="PNG", dpi=(dpi, dpi))
    best = (png.getvalue(), ".png")
    reference = np.asarray(rgb)
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

"""Figures reach the PDF with their own pixels when their IDAT data are passed through
(report.pdfimages), and every image kind the pass-through does not take still reaches it."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from report import pdfimages
from report.pdfparts import import_weasyprint


def _png(mode: str, **save) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(1)
    shape = {"L": (24, 40), "RGB": (24, 40, 3), "RGBA": (24, 40, 4)}[mode]
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[:, :8] = 200                      # a flat block: rows whose filters differ from the noise's
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="PNG", **save)
    return buf.getvalue(), pixels


def _pdf_pixels(png: bytes) -> np.ndarray:
    import pypdf
    weasyprint = import_weasyprint()
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    html = f'<img src="{src}" style="width: 40px; image-rendering: pixelated">'
    pdf = weasyprint.HTML(string=html).write_pdf()
    (image,) = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images
    return np.asarray(image.image)


@pytest.mark.parametrize("mode, save, passed", [
    ("RGB", {}, True), ("L", {}, True), ("RGB", {"compress_level": 0}, True),
    ("RGB", {"optimize": True}, True), ("RGBA", {}, False),
])
def test_the_pdf_holds_the_figures_own_pixels(mode, save, passed):
    # catches: IDAT chunks cut at a wrong offset or joined out of order (garbled rows), a grey PNG
    # written as RGB, or a PNG the PDF stream cannot take (alpha) passed through instead of re-encoded
    png, pixels = _png(mode, **save)
    assert (pdfimages.idat(png) is not None) == passed
    got = _pdf_pixels(png)
    assert got.shape == pixels.shape and np.array_equal(got, pixels)


def test_only_8_bit_grey_or_rgb_non_interlaced_pngs_pass():
    # catches: a 16-bit, palette or interlaced PNG (whose IDAT data mean other bytes) passed through
    rgb, _ = _png("RGB")
    assert pdfimages.idat(rgb)
    assert pdfimages.idat(b"not a png at all, nor long enough") is None
    palette = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8), "L").convert("P").save(palette, format="PNG")
    assert pdfimages.idat(palette.getvalue()) is None
    sixteen = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(sixteen, format="PNG")
    assert pdfimages.idat(sixteen.getvalue()) is None
    interlaced = bytearray(rgb)
    interlaced[28] = 1                        # IHDR's interlace byte (the CRC is not read)
    assert pdfimages.idat(bytes(interlaced)) is None

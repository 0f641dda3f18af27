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


def _pdf_stream(png: bytes) -> bytes:
    """The raw (still compressed) data of the one image stream of a PDF made of ``png``."""
    import pypdf
    weasyprint = import_weasyprint()
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    pdf = weasyprint.HTML(string=f'<img src="{src}" style="width: 40px">').write_pdf()
    xobjects = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/XObject"]
    (stream,) = [xobjects[k].get_object() for k in xobjects]
    return stream._data


@pytest.mark.parametrize("mode, passed", [("RGB", True), ("L", True), ("RGBA", False)])
def test_the_pdf_stream_is_the_pngs_own_idat_data(mode, passed):
    # catches: a pass-through that never happens (WeasyPrint encodes again: same pixels, none of the speed),
    # or one that takes a PNG whose stream the PDF cannot hold as it is
    png, _ = _png(mode, compress_level=0)      # WeasyPrint's own encoding would compress it: the streams differ
    assert (_pdf_stream(png) == pdfimages.idat(png)) == passed


def test_a_png_of_several_idat_chunks_is_joined_exactly():
    # catches: each chunk's data cut one byte long or short (a single-chunk PNG hides it: zlib ignores a tail)
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", compress_level=0)
    png = buf.getvalue()
    assert png.count(b"IDAT") > 1
    got = _pdf_pixels(png)
    assert np.array_equal(got, pixels)


def test_a_broken_signature_does_not_pass_and_the_patch_is_installed_once():
    # catches: a PNG check that needs every field wrong to refuse (a corrupt file passed through), a second
    # patch that wraps the first, or a header cut short read past its end
    rgb, _ = _png("RGB")
    assert pdfimages.idat(b"\x00" + rgb[1:]) is None
    assert pdfimages.idat(rgb[:28]) is None
    from weasyprint.images import RasterImage
    import_weasyprint()
    first = RasterImage.__dict__["_get_png_data"]
    pdfimages.pass_png_through()
    assert RasterImage.__dict__["_get_png_data"] is first

"""Figures into the PDF without re-encoding them (about a third of WeasyPrint's time on the report).

WeasyPrint 70 writes a PNG image into the PDF by decoding it and encoding it again as PNG, to
keep its IDAT chunks (``RasterImage._get_png_data``): a PDF image stream with FlateDecode and a
PNG predictor takes a PNG's IDAT data as it is. The report's figures are already 8-bit grey or
RGB PNGs without interlacing (``report.figures``), whose IDAT data are that same stream: taking
them from the file gives the same pixels in the PDF (``tests/test_pdfimages.py``) without the
encoding. Any other image (alpha, palette, 16 bits, interlaced, JPEG) goes WeasyPrint's own way.
"""

from __future__ import annotations

import io
import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY, RGB = 0, 2          # PNG colour types whose IDAT data a PDF stream takes as they are


def idat(png: bytes) -> bytes | None:
    """The concatenated IDAT data of an 8-bit grey or RGB, non-interlaced PNG; None for any other
    PNG (or bytes that are not a PNG)."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR" or len(png) < 29:
        return None
    depth, colour, _, _, interlace = struct.unpack("!BBBBB", png[24:29])
    if depth != 8 or colour not in (GREY, RGB) or interlace:
        return None
    chunks, pos = [], 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack("!I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            chunks.append(png[pos + 8:pos + 8 + length])
        pos += 12 + length
    return b"".join(chunks) or None


def pass_png_through() -> None:
    """Let WeasyPrint take an 8-bit grey or RGB PNG's IDAT data from the file (see the module's
    docstring); every other image is encoded by WeasyPrint as before. Idempotent."""
    from weasyprint.images import RasterImage

    encode = RasterImage.__dict__["_get_png_data"].__func__      # a staticmethod's function
    if getattr(encode, "passes_png_through", False):              # installed already
        return

    def get_png_data(pillow_image):
        fp = getattr(pillow_image, "fp", None)
        if pillow_image.format == "PNG" and pillow_image.mode in ("L", "RGB") and isinstance(fp, io.BytesIO):
            data = idat(fp.getvalue())
            if data is not None:
                return data
        return encode(pillow_image)

    get_png_data.passes_png_through = True
    RasterImage._get_png_data = staticmethod(get_png_data)

"""Layout facts of a rendered report PDF, read with poppler (pdfimages, pdftotext)."""

from __future__ import annotations

import re
import subprocess
from html import unescape
from pathlib import Path

import numpy as np

BOTTOM_MARGIN_PT = 20 / 25.4 * 72      # report.css: @page margin-bottom 20mm
MAX_BODY_PAGES = 18                    # issue 24: the body answers Q1-Q5 in at most this many pages (default build)


def image_pages(pdf: Path) -> list[int]:
    """Page of each embedded image, in document order (one image per figure)."""
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[2:]
    return [int(line.split()[0]) for line in out if line.split() and line.split()[2] == "image"]


def caption_pages(pdf: Path) -> dict[int, int]:
    """Figure number -> page of its caption ("Figure N. Capitalised text" at a line start)."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = {}
    for i, page in enumerate(text.split("\f"), start=1):
        for m in re.finditer(r"^\s*Figure (\d+)\. [A-Z|]", page, re.M):
            pages.setdefault(int(m.group(1)), i)
    return pages


def blocks_in_bottom_margin(pdf: Path) -> list[tuple[int, str]]:
    """(page, text) of text blocks that reach into the bottom margin, the page footer excepted."""
    html = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    bad = []
    for i, page in enumerate(re.findall(r"<page (.*?)</page>", html, re.S), start=1):
        height = float(re.search(r'height="([\d.]+)"', page).group(1))
        for block in re.findall(r"<block (.*?)</block>", page, re.S):
            y_max = float(re.search(r'yMax="([\d.]+)"', block).group(1))
            words = " ".join(unescape(w) for w in re.findall(r">([^<]+)</word>", block))
            if y_max > height - BOTTOM_MARGIN_PT + 2 and not re.fullmatch(r"Page \d+ of \d+", words):
                bad.append((i, words[:80]))
    return bad


def strips_per_figure(html: Path) -> list[int]:
    """Images per figure of the report's HTML, in document order (a tall figure is printed as
    several strips: see report/figures.py)."""
    text = html.read_text("utf-8")
    return [len(re.findall(r"<img ", body)) for body in
            re.findall(r'<figure class="figure[^"]*">(.*?)</figure>', text, re.S)]


def layout_problems(pdf: Path) -> list[str]:
    """Figures whose caption is not on the page of their (last) image, and text in the bottom
    margin. The HTML next to the PDF tells how many images (strips) each figure has."""
    problems = []
    images, captions = image_pages(pdf), caption_pages(pdf)
    html = pdf.with_suffix(".html")
    counts = strips_per_figure(html) if html.exists() else [1] * len(images)
    if sum(counts) != len(images) or len(counts) != len(captions):
        problems.append(f"{len(images)} images in {len(counts)} figures but {len(captions)} figure captions")
        return problems
    last = np.cumsum(counts) - 1
    for number, page in captions.items():
        if number <= len(counts) and images[last[number - 1]] != page:
            problems.append(f"Figure {number}: last image on page {images[last[number - 1]]}, "
                            f"caption on page {page}")
    problems += [f"page {p}: text in the bottom margin: {t!r}" for p, t in blocks_in_bottom_margin(pdf)]
    return problems


TOP_MARGIN_PT = 18 / 25.4 * 72         # report.css: @page margin-top


def page_fill(pdf: Path, dpi: int = 24) -> list[float]:
    """Per page, the share of the text block (between the top and bottom margins) above the
    lowest ink: 1.0 for a full page, 0.3 for a page whose content stops a third of the way down."""
    import tempfile

    import numpy as np
    from PIL import Image
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", str(pdf), f"{tmp}/p"], check=True)
        for png in sorted(Path(tmp).glob("p-*.pgm"), key=lambda p: int(p.stem.split("-")[-1])):
            a = np.asarray(Image.open(png), dtype=np.uint8)
            top, bottom = int(TOP_MARGIN_PT / 72 * dpi), a.shape[0] - int(BOTTOM_MARGIN_PT / 72 * dpi)
            ink = np.flatnonzero((a[top:bottom] < 200).any(axis=1))
            out.append(float((ink.max() + 1) / (bottom - top)) if ink.size else 0.0)
    return out


def section_last_pages(pdf: Path, titles: list[str]) -> set[int]:
    """Pages that end a section: the page before each section title's heading page (after the
    table of contents), and the last page."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    starts = []
    for title in titles:
        for i, page in enumerate(pages, start=1):
            if re.search(rf"^\s*{re.escape(title)}\s*$", page, re.M):
                starts.append(i)
                break
    return {s - 1 for s in starts if s > 1} | {len(pages)}


def underfilled_pages(pdf: Path, titles: list[str], min_fill: float = 0.6) -> list[tuple[int, float]]:
    """(page, fill) of pages more than 1 - ``min_fill`` empty that do not end a section."""
    last = section_last_pages(pdf, titles)
    return [(i, round(f, 2)) for i, f in enumerate(page_fill(pdf), start=1) if f < min_fill and i not in last]


def report_titles() -> list[str]:
    """The report's section headings, in order: findings, the questions, the methods appendix's
    parts, references, provenance."""
    from report.registry import SECTIONS
    from report.render import GLOSSARY_TITLE, methods_title
    return (["Findings"] + [s.title for s in SECTIONS] + [methods_title(GLOSSARY_TITLE)]
            + [methods_title(s.title) for s in SECTIONS]
            + ["References", "Appendix: provenance of this build"])


def body_pages(pdf: Path) -> int | None:
    """Pages before the first page that carries a "Methods and statistics" heading (the body:
    title page, findings and the answers to the questions); None when the PDF has no appendix."""
    from report.render import METHODS_TITLE
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    heading = re.compile(rf"^\s*{re.escape(METHODS_TITLE)}: [^.]*?\S\s*$", re.M)   # not a contents line (leaders)
    for i, page in enumerate(text.split("\f"), start=1):
        if i > 1 and heading.search(page):
            return i - 1
    return None


# Image panels (X-rays and maps) in the figures: found in the pixels of each embedded image.
MIN_PANEL_IN = 1.5                     # no X-ray or map printed narrower than this
INK_LEVEL = 245                        # a pixel is ink when one of its channels is darker than this
SOLID_IN = 0.35                        # a panel pixel lies in runs of ink this long both ways
PANEL_ASPECT = (0.8, 1.25)             # X-rays and maps are square; bars and colour bars are not
MIN_SOLID = 0.85                       # share of a panel's box that is solid
FLAT_COLOURS, FLAT_SHARE = 4, 0.9      # flat (bars of a chart): 4 colours cover 90% of the box


def _in_long_run(ink: np.ndarray, length: int) -> np.ndarray:
    """Pixels of a 2-D boolean array that lie in a horizontal run of at least ``length`` trues."""
    h, w = ink.shape
    if w < length:
        return np.zeros_like(ink)
    c = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(ink, axis=1)], axis=1)
    full = (c[:, length:] - c[:, :-length]) == length          # a full run starts at column j
    f = np.concatenate([np.zeros((h, 1), np.int64), np.cumsum(full, axis=1)], axis=1)
    j = np.arange(w)
    lo, hi = np.clip(j - length + 1, 0, full.shape[1]), np.clip(j + 1, 0, full.shape[1])
    return (f[:, hi] - f[:, lo]) > 0


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def panel_boxes(rgb: np.ndarray, ppi: float) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) pixel boxes of the image panels in an H x W x 3 figure image
    printed at ``ppi``: solid areas (every pixel in horizontal and vertical runs of ink at least
    ``SOLID_IN`` long: text, lines and colour bars are not) filling most of a roughly square box
    that is not flat (bars of a chart: a few colours). A panel of a signed map (near white where the map is near zero) is
    not found; every grid that has one also has images or magnitude maps of the same size."""
    rgb = np.asarray(rgb)[..., :3]
    ink = rgb.min(axis=-1) < INK_LEVEL
    n = max(2, int(SOLID_IN * ppi))
    solid = _in_long_run(ink, n) & _in_long_run(ink.T, n).T
    boxes = []
    for top, bottom in _runs(solid.any(axis=1)):
        band = solid[top:bottom]
        for left, right in _runs(band.any(axis=0)):
            rows = np.flatnonzero(band[:, left:right].any(axis=1))
            t, b = top + rows[0], top + rows[-1] + 1
            h, w = b - t, right - left
            if min(h, w) < n or not PANEL_ASPECT[0] <= w / h <= PANEL_ASPECT[1]:
                continue
            if solid[t:b, left:right].mean() < MIN_SOLID:      # a patch of a sparse map, or bars
                continue
            inner = rgb[t + h // 10: b - h // 10, left + w // 10: right - w // 10] >> 3
            _, counts = np.unique(inner.reshape(-1, 3).astype(np.int32) @ np.array([1024, 32, 1]),
                                  return_counts=True)
            if np.sort(counts)[::-1][:FLAT_COLOURS].sum() < FLAT_SHARE * counts.sum():
                boxes.append((int(t), int(b), int(left), int(right)))
    return boxes


def image_list(pdf: Path) -> list[dict]:
    """``pdfimages -list`` rows of the images (soft masks left out): page, num, width, x-ppi."""
    out = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[2:]
    rows = []
    for line in out:
        f = line.split()
        if len(f) > 12 and f[2] == "image":
            rows.append({"page": int(f[0]), "num": int(f[1]), "width": int(f[3]), "ppi": float(f[12])})
    return rows


def narrow_panels(pdf: Path, min_in: float = MIN_PANEL_IN) -> list[tuple[int, int, float]]:
    """(page, image number, printed width in inches) of every image panel of the PDF's figures
    printed narrower than ``min_in`` (each embedded image measured at its own printed ppi)."""
    import tempfile

    from PIL import Image
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdfimages", "-png", str(pdf), f"{tmp}/i"], check=True)
        for row in image_list(pdf):
            path = Path(tmp) / f"i-{row['num']:03d}.png"
            if not path.exists():
                continue
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            for _, _, left, right in panel_boxes(rgb, row["ppi"]):
                width = (right - left) / row["ppi"]
                if width < min_in:
                    bad.append((row["page"], row["num"], round(width, 2)))
    return bad


if __name__ == "__main__":       # python -m tests.pdf_layout build/report.pdf
    import sys
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/report.pdf")
    fill = page_fill(target)
    print(f"{target}: {len(fill)} pages; fill " + " ".join(f"{f:.2f}" for f in fill))
    body = body_pages(target)
    print(f"body (pages before the methods appendix): {body} of {len(fill)} pages"
          + (f", target at most {MAX_BODY_PAGES}" if body is not None else ""))
    print("layout problems:", layout_problems(target) or "none")
    print("pages more than 40% empty that do not end a section:", underfilled_pages(target, report_titles()) or "none")
    narrow = {}
    for page, num, width in narrow_panels(target):
        narrow.setdefault((page, num), []).append(width)
    print(f"image panels narrower than {MIN_PANEL_IN} in:", "; ".join(
        f"page {p} image {k}: {len(w)} panels, the narrowest {min(w):.2f} in" for (p, k), w in narrow.items()) or "none")


STRAY_LINES = 8          # a page that holds at most this many lines of text ...
STRAY_FILL = 0.5         # ... and ends above this share of its text block is a stray page


def stray_pages(pdf: Path, lines: int = STRAY_LINES, fill: float = STRAY_FILL,
                images: bool | None = None) -> list[tuple[int, int, float]]:
    """(page, text lines, fill) of pages that hold only the tail of what began on the page before: a
    stray line or two, or a lone figure strip with a few lines under it (at most ``lines`` lines of
    text and ink ending above ``fill`` of the text block). The title page and pages with no text
    (a whole figure) are not counted. ``images`` True keeps only pages with an image (a figure strip),
    False only pages without one (a stray tail of text), None both."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = text.split("\f")
    fills = page_fill(pdf)
    with_image = set(image_pages(Path(pdf)))
    out = []
    for i, (page, f) in enumerate(zip(pages, fills), start=1):
        n = len([l for l in page.splitlines() if l.strip()])
        if i > 1 and 0 < n <= lines and f < fill and images in (None, i in with_image):
            out.append((i, n, round(f, 2)))
    return out

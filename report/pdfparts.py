"""HTML to PDF in parts: each top-level ``<section>`` of the page is laid out on its own, cached
by its content, and the parts are merged into one PDF (issue #23: an answer edit re-lays out
the part it is in, not the whole report).

WeasyPrint spends its time laying out and painting pages; a part whose HTML and fetched files
are unchanged since the last build reuses its PDF from ``cache``. What a part cannot know by
itself is done after the merge, so that a part's PDF never depends on where it lands:

- **page margin boxes** ("Page 3 of 44"): removed from the parts and drawn under each merged
  page from a separate rendering of empty pages with the page's own ``@page`` rules (cached by
  those rules and the page count), so a part whose page count changes moves the numbers of the
  parts after it without re-laying them out;
- **links** to an anchor in another part: written as ``xaikit-dest:NAME`` in the part and turned
  into a link to the named destination NAME of the merged PDF (every part's anchors are merged
  into one name tree);
- **page numbers of link targets** (``target-counter(attr(href), page)``, the table of
  contents): each internal link carries its target's page in the merged PDF as an attribute the
  CSS prints instead; a part whose numbers change is laid out again (rarely more than once);
- **bookmarks** (the outline) are rebuilt for the whole document from the parts' headings, as
  WeasyPrint nests them.

Only CSS whose effect is known to be part-independent is split; anything else (left/right or
named pages, running headers, CSS counters, page backgrounds, fixed elements, external style
sheets) renders the page whole, as before. Sections that follow the one before on the same page
(no forced page break between them, as the report's body questions do) are laid out together as
one part; which ones do is learnt from the layout and remembered in the cache's index.
Stale parts are rendered in parallel processes (``workers``). Nothing is written outside
``cache`` (atomically); the caller writes the merged bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import artifacts

FORMAT = 2                     # bump when a part's cached PDF or metadata changes meaning
DEST_SCHEME = "xaikit-dest:"   # a link to an anchor of another part, until the merge
PAGE_ATTR = "data-xaikit-page" # an internal link's target page in the merged PDF
MAX_ROUNDS = 4                 # layouts of parts whose target page numbers moved
FORCED = {"page", "left", "right", "recto", "verso", "always"}
MARGIN_BOXES = ("top-left-corner", "top-left", "top-center", "top-right", "top-right-corner",
                "bottom-left-corner", "bottom-left", "bottom-center", "bottom-right",
                "bottom-right-corner", "left-top", "left-middle", "left-bottom", "right-top",
                "right-middle", "right-bottom")
_RESET_BOXES = " ".join(f"@{b} {{ content: none; }}" for b in MARGIN_BOXES)
PART_CSS = f"\n@page {{ {_RESET_BOXES} }}\n@page :first {{ {_RESET_BOXES} }}\n"
# A part whose last page holds only a few lines (the tail of its text, or a figure strip and a few lines) is laid out again a
# little tighter; the tighter layout is kept when it has fewer pages (tests/pdf_layout.py: stray_pages).
STRAY_LINES = 8
TIGHT_CSS = ("\np, li { line-height: 1.3; } p { margin: 0.8em 0; } figure { margin: 0.5em 0; } "
             "h3 { margin-top: 0.9em; } .findings li { margin-bottom: 0.35em; }\n")
STRAY_FILL = 0.5      # ... and, with an image on it, ink ending above this share of the text block: a lone figure strip
KEEP_CLASS = "xaikit-keep-last"
KEEP_CSS = f"\nfigure.{KEEP_CLASS} img:last-of-type {{ break-before: avoid; page-break-before: avoid; }}\n"
TARGET_PAGE = re.compile(r"target-counter\(\s*attr\(\s*href\s*\)\s*,\s*page\s*\)")
UNSUPPORTED = [   # CSS whose effect depends on the whole document, not on one part
    (re.compile(r"@page[^{]*:(left|right|blank|recto|verso|nth)", re.I), "left/right/blank page rules"),
    (re.compile(r"(^|[;{\s])page\s*:", re.I), "named pages"),
    (re.compile(r"string-set|running\(|element\(|counter-increment|counter-reset|target-text|"
                r"target-counters|position\s*:\s*fixed", re.I),
     "running headers, CSS counters, cross-references or fixed elements"),
]


@dataclass
class Result:
    """What :func:`write_pdf` did: the PDF's bytes and where the time went."""

    pdf: bytes
    parts: list = field(default_factory=list)       # per part: {"name", "pages", "rendered", "seconds"}
    rounds: int = 0
    whole: str | None = None                         # why the page was rendered whole, if it was
    seconds: dict = field(default_factory=dict)      # "render", "merge"

    def summary(self) -> str:
        if self.whole:
            return f"PDF rendered whole ({self.whole}) in {self.seconds.get('render', 0):.1f} s"
        done = [p for p in self.parts if p["rendered"]]
        names = ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in done) or "none"
        return (f"PDF in {len(self.parts)} parts, {len(done)} laid out ({names}), "
                f"{len(self.parts) - len(done)} reused; merged in {self.seconds.get('merge', 0):.1f} s")


# ---------------------------------------------------------------------------------------- split

def _top_level_sections(body: str) -> list[tuple[int, int]] | None:
    """(start, end) of each top-level ``<section>`` element of ``body``; None when anything but
    white space and comments lies between or around them."""
    spans, depth, start = [], 0, 0
    for m in re.finditer(r"<(/?)section\b[^>]*>", body, re.I):
        if not m.group(1):
            if depth == 0:
                start = m.start()
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return None
            if depth == 0:
                spans.append((start, m.end()))
    if depth != 0 or not spans:
        return None
    gaps = [body[:spans[0][0]], body[spans[-1][1]:]] + \
           [body[a[1]:b[0]] for a, b in zip(spans, spans[1:])]
    if any(re.sub(r"<!--.*?-->", "", g, flags=re.S).strip() for g in gaps):
        return None
    return spans


def _page_blocks(css: str) -> list[tuple[int, int, str]]:
    """(start, end, selector) of each ``@page`` rule (with its nested margin boxes)."""
    out = []
    for m in re.finditer(r"@page\b([^{]*)\{", css):
        depth, i = 1, m.end()
        while depth and i < len(css):
            depth += {"{": 1, "}": -1}.get(css[i], 0)
            i += 1
        out.append((m.start(), i, m.group(1).strip()))
    return out


def unsupported(css: str, head: str) -> str | None:
    """Why ``css`` (the page's style sheets) cannot be rendered in parts, or None."""
    if re.search(r"<link\b[^>]*stylesheet", head, re.I):
        return "external style sheet"
    for pattern, what in UNSUPPORTED:
        if pattern.search(css):
            return what
    pages = _page_blocks(css)
    outside = css
    for start, end, _ in reversed(pages):
        if re.search(r"background", css[start:end], re.I):
            return "page background"
        outside = outside[:start] + outside[end:]
    if re.search(r"counter\(\s*pages?\s*\)", outside):
        return "page counter outside the page margins"
    if TARGET_PAGE.sub("", outside).count("target-counter"):
        return "target-counter other than the page of a link's target"
    if re.search(r"(^|[\s,}])(html|body|:root)\b[^{}]*\{[^}]*background", outside, re.I):
        return "page-wide background"
    return None


@dataclass(frozen=True)
class Page:
    """The HTML cut at its top-level sections."""

    head: str        # up to and including <body ...>, with the style sheets
    css: str         # the text of the <style> elements
    parts: tuple     # each top-level section's HTML
    tail: str        # </body></html>
    names: tuple     # a short name per part (its id or class)
    ids: tuple       # the anchors (id / name) of each part


def split(html: str) -> Page | str:
    """The page cut at its top-level sections, or why it cannot be rendered in parts."""
    m_body = re.search(r"<body\b[^>]*>", html, re.I)
    end = html.lower().rfind("</body>")
    if not m_body or end < m_body.end():
        return "no <body>"
    head, body, tail = html[:m_body.end()], html[m_body.end():end], html[end:]
    css = "\n".join(re.findall(r"<style\b[^>]*>(.*?)</style>", head, re.S | re.I))
    why = unsupported(css, head)
    if why:
        return why
    spans = _top_level_sections(body)
    if spans is None or len(spans) < 2:
        return "fewer than two top-level sections, or content between them"
    parts = tuple(body[a:b] for a, b in spans)
    names = []
    for i, p in enumerate(parts):
        tag = re.match(r"<section\b[^>]*>", p, re.I).group(0)
        m = re.search(r'\bid=["\']([^"\']+)', tag) or re.search(r'\bclass=["\']([^"\' ]+)', tag)
        names.append(m.group(1) if m else f"part{i + 1}")
    ids = tuple(frozenset(re.findall(r'\b(?:id|name)=["\']([^"\']+)["\']', p)) for p in parts)
    return Page(head, css, parts, tail, tuple(names), ids)


_LINK = re.compile(r"""<a\b([^>]*?)\bhref=(["'])#([^"']+)\2""", re.I)


def part_html(page: Page, index: int, target_pages: dict[str, int]) -> str:
    """Part ``index`` as a page of its own: margin boxes removed (drawn after the merge),
    ``@page :first`` rules kept for the first part only, links to other parts as
    ``xaikit-dest:`` links, and every internal link's target page as ``data-xaikit-page``
    when the CSS prints it (``target-counter(attr(href), page)``)."""
    numbered = bool(TARGET_PAGE.search(page.css))
    own = page.ids[index]
    elsewhere = frozenset().union(*page.ids) - own

    def style(m: re.Match) -> str:
        css = m.group(2)
        if index > 0:
            for start, end, selector in reversed(_page_blocks(css)):
                if re.fullmatch(r":first", selector):
                    css = css[:start] + css[end:]
        if numbered:
            css = TARGET_PAGE.sub(f"attr({PAGE_ATTR})", css)
        return m.group(1) + css + PART_CSS + m.group(3)

    head = re.sub(r"(<style\b[^>]*>)(.*?)(</style>)", style, page.head, flags=re.S | re.I)

    def link(m: re.Match) -> str:
        attrs, quote, name = m.group(1), m.group(2), m.group(3)
        number = f' {PAGE_ATTR}="{target_pages.get(unquote(name), "")}"' if numbered else ""
        if unquote(name) not in elsewhere:     # in this part (or nowhere: WeasyPrint drops it)
            return f"<a{number}{attrs}href={quote}#{name}{quote}"
        return f"<a{number}{attrs}href={quote}{DEST_SCHEME}{name}{quote}"

    return head + _LINK.sub(link, page.parts[index]) + page.tail


def footer_html(page: Page, pages: int) -> str:
    """``pages`` empty pages with the page's own style sheets: their margin boxes only."""
    body = "<div></div>" + '<div style="break-before: page"></div>' * (pages - 1)
    return page.head + body + page.tail


# ---------------------------------------------------------------------------------------- render

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _forced_breaks(document) -> tuple[str, str]:
    """(break-before of the part's first top-level section, break-after of its last)."""
    def sections(box, depth=0):
        if getattr(box, "element_tag", None) == "section" and depth <= 4:
            return [box]
        if getattr(box, "element_tag", None) == "section":
            return []
        out = []
        for child in getattr(box, "children", []):
            out += sections(child, depth + 1)
        return out
    first = sections(document.pages[0]._page_box)
    last = sections(document.pages[-1]._page_box)
    before = str(first[0].style["break_before"]) if first else ""
    after = str(last[-1].style["break_after"]) if last else ""
    return before, after


def import_weasyprint():
    """``import weasyprint`` (:func:`_import_weasyprint`), its figures written without re-encoding
    (:func:`report.pdfimages.pass_png_through`)."""
    weasyprint = _import_weasyprint()
    from .pdfimages import pass_png_through
    pass_png_through()
    return weasyprint


def _import_weasyprint():
    """``import weasyprint``, without its half second of library search on Linux.

    WeasyPrint tries several names per C library (``libgobject-2.0-0``, ``gobject-2.0``, ...,
    ``libgobject-2.0.so.0``); cffi hands each name it cannot open directly to
    ``ctypes.util.find_library``, which runs ``ldconfig -p`` and then gcc and ld for every
    name (about 40 processes). While WeasyPrint loads, ``find_library`` reads ``ldconfig -p``
    once and does not run the compiler: a library that only the compiler would find is
    still loaded by its explicit ``.so`` name. Should the import fail that way, it is tried
    again the ordinary way."""
    import sys
    if "weasyprint" in sys.modules or not sys.platform.startswith("linux"):
        import weasyprint
        return weasyprint
    import ctypes.util
    import struct
    import subprocess

    original = ctypes.util.find_library
    listing: list[bytes] = []

    def find_library(name: str):
        if not listing:
            try:
                listing.append(subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True,
                                              env={"LC_ALL": "C", "LANG": "C"}, timeout=10).stdout)
            except (OSError, subprocess.SubprocessError):
                listing.append(b"")
        machine = os.uname().machine + ("-32" if struct.calcsize("l") == 4 else "-64")
        abi = {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit", "sparc64-64": "libc6,64bit",
               "s390x-64": "libc6,64bit", "ia64-64": "libc6,IA-64"}.get(machine, "libc6")
        m = re.search(os.fsencode(rf"\s+(lib{re.escape(name)}\.[^\s]+)\s+\({abi}"), listing[0])
        return os.fsdecode(m.group(1)) if m else None

    ctypes.util.find_library = find_library
    try:
        import weasyprint
    except (OSError, ImportError):
        for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
            del sys.modules[mod]
        ctypes.util.find_library = original
        import weasyprint
    finally:
        ctypes.util.find_library = original
    return weasyprint


def render_one(html: str, base_url: str, fetcher_factory) -> tuple[bytes, dict]:
    """One part (or the footers) with WeasyPrint: its PDF and what the merge needs of it."""
    weasyprint = import_weasyprint()
    t0 = time.perf_counter()
    fetched: list[str] = []
    fetcher = fetcher_factory()
    fetch = fetcher.fetch

    def recording_fetch(url, headers=None):
        fetched.append(url)
        return fetch(url, headers)

    fetcher.fetch = recording_fetch
    document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).render()
    pdf = document.write_pdf()
    anchors, bookmarks = {}, []
    for i, p in enumerate(document.pages):
        for name in p.anchors:
            anchors.setdefault(name, i)
        for level, label, (x, y), state in p.bookmarks:
            bookmarks.append([i, level, label, x * 0.75, (p.height - y) * 0.75, state])
    files = {}
    for url in fetched:
        path = _local_path(url)
        if path is not None:                      # a file missing now must still be missing
            files[str(path)] = _sha(path.read_bytes()) if path.is_file() else ""
    meta = {"pages": len(document.pages), "anchors": anchors, "bookmarks": bookmarks,
            "last_lines": _lines(document.pages[-1]) if document.pages else 0,
            **(_last_page(document.pages[-1]) if document.pages else {}),
            "files": files, "breaks": list(_forced_breaks(document)) if document.pages else ["", ""],
            "seconds": time.perf_counter() - t0}
    return pdf, meta


def _last_page(page) -> dict:
    """``last_image``: an image on the page; ``last_fill``: the share of the page's content height
    above the bottom of its lowest line or image."""
    from weasyprint.formatting_structure import boxes
    root = page._page_box
    top, height = root.content_box_y(), root.height
    items = [b for b in root.descendants() if isinstance(b, (boxes.LineBox, boxes.ReplacedBox))]
    bottom = max((b.position_y + b.margin_height() for b in items), default=top)
    return {"last_image": any(isinstance(b, boxes.ReplacedBox) for b in items),
            "last_fill": float(min(1.0, max(0.0, (bottom - top) / height))) if height else 1.0}


def _lines(page) -> int:
    """Lines of text on a laid-out WeasyPrint page."""
    from weasyprint.formatting_structure import boxes

    def count(box) -> int:
        if isinstance(box, boxes.LineBox):
            return int(any(isinstance(b, boxes.TextBox) and b.text.strip() for b in box.descendants()))
        return sum(count(child) for child in getattr(box, "children", ()))
    return count(page._page_box)


def keep_last_strips(html: str) -> str | None:
    """``html`` with the last figure printed as strips (class ``split``) keeping its last two strips on
    one page (:data:`KEEP_CSS`), or None when it has no such figure."""
    found = list(re.finditer(r'<figure class="([^"]*\bsplit\b[^"]*)"', html))
    if not found:
        return None
    m = found[-1]
    html = html[:m.end(1)] + " " + KEEP_CLASS + html[m.end(1):]
    return re.sub(r"</style>", lambda x: KEEP_CSS + x.group(0), html, count=1, flags=re.I)


def tight(html: str) -> str:
    """``html`` with :data:`TIGHT_CSS` added to the end of its first style sheet."""
    return re.sub(r"</style>", lambda m: TIGHT_CSS + m.group(0), html, count=1, flags=re.I)


def _render_job(job):
    html, base_url, fetcher_factory = job
    return render_one(html, base_url, fetcher_factory)


def _worker_signals():
    """A worker ignores Ctrl-C (its parent stops it) and ends quietly when terminated (it
    inherits the build's handlers, which turn SIGTERM into KeyboardInterrupt)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve(conn, workers: int) -> None:
    """The renderer process: imports WeasyPrint, then lays out each batch of jobs it receives,
    forking up to ``workers`` processes (which share the import) for a batch of several."""
    import multiprocessing
    import signal
    _worker_signals()

    def stop(*_):
        for child in multiprocessing.active_children():
            child.terminate()
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
    import_weasyprint()
    while True:
        try:
            jobs = conn.recv()
        except (EOFError, OSError):
            return
        if jobs is None:
            return
        try:
            if len(jobs) > 1 and workers > 1:
                pool = multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), _worker_signals)
                try:
                    out = pool.map(_render_job, jobs, chunksize=1)
                finally:
                    pool.terminate()
                    pool.join()
            else:
                out = [_render_job(j) for j in jobs]
            conn.send(("ok", out))
        except Exception as exc:            # noqa: BLE001  (handed to the caller)
            try:
                conn.send(("error", exc))
            except Exception:               # noqa: BLE001  (an exception that does not pickle)
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _weasyprint_version() -> str:
    from importlib.metadata import version
    return version("weasyprint")


class Renderer:
    """Where parts are laid out. With ``workers`` >= 1 (and ``fork``), a renderer process is
    forked on entering: it imports WeasyPrint while the caller composes the HTML, and lays out
    a batch of several parts in up to ``workers`` processes forked from it (so WeasyPrint is
    imported once). Leaving stops it (at once on an error or Ctrl-C). With ``workers`` = 0, or
    in a process that has loaded TensorFlow (its threads make a fork unsafe), parts are laid
    out in this process."""

    def __init__(self, workers: int = 2):
        self.workers = max(0, min(workers, os.cpu_count() or 1))
        self.process = self.conn = None

    def __enter__(self) -> "Renderer":
        import sys
        if self.workers > 0 and hasattr(os, "fork") and "tensorflow" not in sys.modules:
            import multiprocessing
            ctx = multiprocessing.get_context("fork")
            self.conn, child = ctx.Pipe()
            self.process = ctx.Process(target=_serve, args=(child, self.workers), daemon=False)
            self.process.start()
            child.close()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.process is None:
            return
        if exc_type is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()
        self.process = self.conn = None

    def render(self, htmls: list[str], base_url: str, fetcher_factory) -> list[tuple[bytes, dict]]:
        """Each HTML page's PDF and metadata (:func:`render_one`), in order."""
        if not htmls:
            return []
        if self.process is None:
            return [render_one(h, base_url, fetcher_factory) for h in htmls]
        order = sorted(range(len(htmls)), key=lambda i: -len(htmls[i]))    # the longest first
        self.conn.send([(htmls[i], base_url, fetcher_factory) for i in order])
        import pypdf  # noqa: F401  (for the merge, imported while the renderer lays out)
        try:
            status, out = self.conn.recv()
        except EOFError:
            raise RuntimeError("the PDF renderer process ended unexpectedly") from None
        if status != "ok":
            raise out
        return [res for _, res in sorted(zip(order, out), key=lambda t: t[0])]


class Cache:
    """Rendered parts by the hash of their HTML, valid while the files they fetched are unchanged."""

    def __init__(self, root: Path, base_url: str):
        self.root, self.base_url = Path(root), base_url
        self.used: set[str] = set()

    def key(self, html: str) -> str:
        return _sha(f"{FORMAT}\0{_weasyprint_version()}\0{self.base_url}\0{html}".encode())[:32]

    def get(self, key: str) -> tuple[bytes, dict] | None:
        meta = artifacts.read_json(self.root / f"{key}.json")
        pdf = self.root / f"{key}.pdf"
        if not isinstance(meta, dict) or not pdf.exists():
            return None
        for path, sha in meta.get("files", {}).items():
            try:
                if (_sha(Path(path).read_bytes()) if Path(path).is_file() else "") != sha:
                    return None
            except OSError:
                return None
        self.used.add(key)
        return pdf.read_bytes(), meta

    def put(self, key: str, pdf: bytes, meta: dict) -> None:
        artifacts.atomic_write_bytes(self.root / f"{key}.pdf", pdf)
        artifacts.atomic_write_json(self.root / f"{key}.json", meta)
        self.used.add(key)

    def prune(self) -> None:
        """Forget every part the last merge did not use."""
        for p in self.root.glob("*"):
            if p.suffix in (".pdf", ".json") and p.stem not in self.used and p.name != "index.json":
                p.unlink(missing_ok=True)


def write_pdf(html: str, *, base_url: str, fetcher_factory, cache: Path,
              renderer: Renderer | None = None) -> Result:
    """The PDF of ``html``, laid out in parts (see the module's docstring) or, when its CSS or
    structure does not allow it, whole. ``fetcher_factory()`` makes a WeasyPrint URL fetcher;
    ``renderer`` lays the parts out (by default in this process)."""
    renderer = renderer or Renderer(0)
    t0 = time.perf_counter()

    def whole(why: str) -> Result:
        (pdf, _), = renderer.render([html], base_url, fetcher_factory)
        return Result(pdf, whole=why, seconds={"render": time.perf_counter() - t0})

    sections = split(html)
    if isinstance(sections, str):
        return whole(sections)
    store = Cache(Path(cache), base_url)
    index = artifacts.read_json(store.root / "index.json")
    index = index if isinstance(index, dict) else {}
    target_pages = dict(index.get("target_pages", {}))
    # sections that follow the one before without a forced page break are laid out together, as one
    # part; which ones do is learnt from the layout and remembered, so a later build groups them at once
    joins = set(index.get("joins", [])) & set(sections.names[1:])
    for _ in range(len(sections.parts)):
        page = glue(sections, joins)
        if len(page.parts) < 2:
            return whole("no forced page break between any two top-level sections")
        laid = _lay_out(page, renderer, store, base_url, fetcher_factory, target_pages)
        if isinstance(laid, str):
            return whole(laid)
        found, keys, metas, target_pages, rendered, rounds = laid
        loose = _loose(metas)
        if not loose:
            break
        joins |= {page.names[i].split("+")[0] for i in loose}
    else:
        return whole("the parts did not settle")
    total = sum(m["pages"] for m in metas)
    f_html = footer_html(page, total)
    f_key = store.key(f_html)
    footer = store.get(f_key)
    if footer is None:
        footer, = renderer.render([f_html], base_url, fetcher_factory)
        store.put(f_key, *footer)
    t1 = time.perf_counter()
    pdf = merge([found[k][0] for k in keys], metas, footer[0])
    t2 = time.perf_counter()
    artifacts.atomic_write_json(store.root / "index.json", {"target_pages": target_pages, "joins": sorted(joins)})
    store.prune()
    parts = [{"name": n, "pages": m["pages"], "rendered": i in rendered, "seconds": rendered.get(i, 0.0)}
             for i, (n, m) in enumerate(zip(page.names, metas))]
    return Result(pdf, parts, rounds, None, {"render": t1 - t0, "merge": t2 - t1})


def _loose(metas: list) -> list[int]:
    """Parts that do not start on a page of their own (no forced break between them and the part before)."""
    return [i for i in range(1, len(metas)) if not ({metas[i - 1]["breaks"][1], metas[i]["breaks"][0]} & FORCED)]


def glue(page: Page, joins: set) -> Page:
    """``page`` with each section named in ``joins`` laid out together with the one before it (one
    part, named "a+b")."""
    groups: list[list[int]] = []
    for i, name in enumerate(page.names):
        if i and name in joins:
            groups[-1].append(i)
        else:
            groups.append([i])
    return Page(page.head, page.css, tuple("\n".join(page.parts[i] for i in g) for g in groups), page.tail,
                tuple("+".join(page.names[i] for i in g) for g in groups),
                tuple(frozenset().union(*(page.ids[i] for i in g)) for g in groups))


def _lay_out_stale(htmls: dict, found: dict, store, renderer, base_url: str, fetcher_factory) -> dict:
    """Fill ``found`` (key -> (pdf, meta)) for every key of ``htmls`` (key -> html) from the cache,
    laying out the rest in one call (the renderer's processes share them); returns key -> seconds
    of what was laid out now."""
    for k in htmls:
        if found.get(k) is None:
            found[k] = store.get(k)
    stale = {k: h for k, h in htmls.items() if found[k] is None}
    for k, res in zip(stale, renderer.render(list(stale.values()), base_url, fetcher_factory)):
        store.put(k, *res)
        found[k] = res
    return {k: found[k][1]["seconds"] for k in stale}


def _lone_strip(meta: dict) -> bool:
    """Whether a part's last page holds only the last strip of a figure and a few lines."""
    return bool(meta["pages"] > 1 and meta.get("last_image") and meta.get("last_fill", 1.0) < STRAY_FILL
                and meta.get("last_lines", STRAY_LINES + 1) <= STRAY_LINES)


def _lost_figure(normal: dict, variant: dict) -> bool:
    """Whether a variant's last page lost the figure that ends the normal layout's last page (WeasyPrint
    may honour the strips' ``break-before: avoid`` by parting the caption from its figure instead)."""
    return bool(normal.get("last_image") and not variant.get("last_image"))


def _variants(html: str, meta: dict) -> list[str]:
    """Other layouts to try for a part whose last page holds at most :data:`STRAY_LINES` lines: tighter
    (:func:`tight`) and, when that page is a lone figure strip, with the last figure's last two strips
    kept together (:func:`keep_last_strips`), alone and tighter."""
    if meta["pages"] <= 1 or meta.get("last_lines") is None or meta["last_lines"] > STRAY_LINES:
        return []
    kept = keep_last_strips(html) if _lone_strip(meta) else None
    return [tight(html)] + ([kept, tight(kept)] if kept else [])


def _tighten(keys: list, htmls: list, found: dict, store, renderer, base_url: str, fetcher_factory,
             rendered: dict) -> list:
    """``keys`` with each part whose last page holds at most :data:`STRAY_LINES` lines replaced by the
    first of its :func:`_variants` with fewer pages, or with as many pages, the figure of its last page
    still there (:func:`_lost_figure`) and no lone strip."""
    tries = {i: _variants(htmls[i], found[k][1]) for i, k in enumerate(keys)}
    v_keys = {i: [store.key(h) for h in hs] for i, hs in tries.items() if hs}
    seconds = _lay_out_stale({vk: h for i, vks in v_keys.items() for vk, h in zip(vks, tries[i])}, found, store,
                             renderer, base_url, fetcher_factory)
    out = list(keys)
    for i, vks in v_keys.items():
        spent = sum(seconds.get(vk, 0.0) for vk in vks)
        if spent:
            rendered[i] = rendered.get(i, 0.0) + spent
        out[i] = min([keys[i]] + vks, key=lambda k: (found[k][1]["pages"], _lost_figure(found[keys[i]][1], found[k][1]),
                                                     _lone_strip(found[k][1])))   # the first on ties
    return out


def _anchor_pages(metas: list) -> dict[str, int]:
    """Each anchor's page in the merged PDF of parts laid out as ``metas``."""
    offsets = [sum(m["pages"] for m in metas[:i]) for i in range(len(metas))]
    now: dict[str, int] = {}
    for off, m in zip(offsets, metas):
        for name, p in m["anchors"].items():
            now.setdefault(name, off + p + 1)
    return now


def _lay_out(page: Page, renderer, store, base_url: str, fetcher_factory, target_pages: dict):
    """Lay out (or take from the cache) every part of ``page`` until the page numbers printed in
    links settle: (found, keys, metas, target_pages, rendered, rounds), or why they did not. A
    layout with a part that does not start a page (:func:`_loose`) is returned at once."""
    numbered = bool(TARGET_PAGE.search(page.css))
    rendered: dict[int, float] = {}
    for rounds in range(1, MAX_ROUNDS + 1):
        htmls = [part_html(page, i, target_pages) for i in range(len(page.parts))]
        keys = [store.key(h) for h in htmls]
        found: dict = {}
        seconds = _lay_out_stale(dict(zip(keys, htmls)), found, store, renderer, base_url, fetcher_factory)
        rendered.update({i: seconds[key] for i, key in enumerate(keys) if key in seconds})
        if _loose([found[k][1] for k in keys]):
            # glued differently next: neither tighten this layout nor settle its page numbers; the
            # next layout starts from the same numbers, so the parts not glued now are reused
            return found, keys, [found[k][1] for k in keys], target_pages, rendered, rounds
        keys = _tighten(keys, htmls, found, store, renderer, base_url, fetcher_factory, rendered)
        metas = [found[k][1] for k in keys]
        now = _anchor_pages(metas)
        settled = now == target_pages or not numbered
        target_pages = now
        if settled:
            return found, keys, metas, target_pages, rendered, rounds
    return f"page numbers did not settle in {MAX_ROUNDS} rounds"


# ---------------------------------------------------------------------------------------- merge

def bookmark_tree(bookmarks: list) -> list:
    """Nest (page, level, label, x, y, state) bookmarks the way WeasyPrint does
    (``weasyprint.anchors.make_page_bookmark_tree``): a skipped level does not add depth.
    Returns [(label, page, x, y, state, children)]."""
    root: list = []
    skipped: list[int] = []
    last_by_depth = [root]
    previous = 0
    for page, level, label, x, y, state in bookmarks:
        if level > previous:
            skipped.append(level - previous - 1)
        else:
            temp = level
            while temp < previous:
                temp += 1 + skipped.pop()
            if temp > previous:
                skipped.append(temp - previous - 1)
        previous = level
        depth = level - sum(skipped)
        children: list = []
        last_by_depth[depth - 1].append((label, page, x, y, state, children))
        del last_by_depth[depth:]
        last_by_depth.append(children)
    return root


def merge(pdfs: list[bytes], metas: list[dict], footer: bytes) -> bytes:
    """One PDF of the parts' pages, in order: each page drawn over its footer page (the margin
    boxes), ``xaikit-dest:`` links turned into links to named destinations, the parts' named
    destinations merged into one name tree, the outline rebuilt for the whole document, and
    the first part's metadata."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    readers = [PdfReader(io.BytesIO(b)) for b in pdfs]
    footer_reader = PdfReader(io.BytesIO(footer))
    dests: dict = {}
    bookmarks = []
    offset = 0
    for reader, meta in zip(readers, metas):
        start = len(writer.pages)
        pages = [writer.add_page(p) for p in reader.pages]
        _collect_dests(reader, pages, dests)
        for p in pages:
            _link_dests(p)
        bookmarks += [[page + offset, *rest] for page, *rest in meta["bookmarks"]]
        offset += meta["pages"]
        assert len(writer.pages) == start + meta["pages"]
    _draw_margins(writer, footer_reader)
    _add_name_tree(writer, dests)
    _add_outline(writer, bookmark_tree(bookmarks), None)
    _copy_document_info(writer, readers[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _collect_dests(reader, pages: list, dests: dict) -> None:
    """Add a part's named destinations to ``dests`` (name -> array), pointing at its pages as merged
    (``pages``); a name already there is kept."""
    from pypdf.generic import ArrayObject

    names = reader.trailer["/Root"].get("/Names", {})
    tree = names.get_object().get("/Dests") if names else None
    flat = tree.get_object().get("/Names", []) if tree is not None else []
    by_ref = {p.indirect_reference.idnum: i for i, p in enumerate(reader.pages)}
    for name, dest in zip(flat[::2], flat[1::2]):
        dest = dest.get_object()
        i = by_ref.get(dest[0].idnum)
        if i is not None and str(name) not in dests:
            dests[str(name)] = ArrayObject([pages[i].indirect_reference] + list(dest[1:]))


def _link_dests(page) -> None:
    """Turn the ``xaikit-dest:NAME`` links of a merged page into links to the named destination NAME."""
    from pypdf.generic import NameObject, TextStringObject

    for annot in page.get("/Annots", []) or []:
        a = annot.get_object()
        action = a.get("/A")
        uri = action.get_object().get("/URI") if action is not None else None
        if uri is not None and str(uri).startswith(DEST_SCHEME):
            del a[NameObject("/A")]
            a[NameObject("/Dest")] = TextStringObject(unquote(str(uri)[len(DEST_SCHEME):]))


def _draw_margins(writer, footer_reader) -> None:
    """Margin boxes: draw each footer page, as a form, first on the merged page of the same number."""
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject

    cloned: dict = {}
    for page, fpage in zip(writer.pages, footer_reader.pages):
        ref = fpage.get("/Resources")
        key = ref.idnum if hasattr(ref, "idnum") else id(ref)
        if key not in cloned:
            copy = ref.get_object().clone(writer)
            cloned[key] = copy.indirect_reference or writer._add_object(copy)
        form = DecodedStreamObject()
        form.set_data(fpage.get_contents().get_data())
        form.update({NameObject("/Type"): NameObject("/XObject"),
                     NameObject("/Subtype"): NameObject("/Form"),
                     NameObject("/BBox"): ArrayObject(FloatObject(v) for v in fpage.mediabox),
                     NameObject("/Resources"): cloned[key]})
        form_ref = writer._add_object(form.flate_encode())
        resources = DictionaryObject(page["/Resources"].get_object())
        xobjects = DictionaryObject(resources.get("/XObject", DictionaryObject()).get_object())
        xobjects[NameObject("/XaikitMargins")] = form_ref
        resources[NameObject("/XObject")] = xobjects
        page[NameObject("/Resources")] = resources
        draw = DecodedStreamObject()
        draw.set_data(b"q /XaikitMargins Do Q\n")
        contents = page["/Contents"]
        old = list(contents.get_object()) if isinstance(contents.get_object(), ArrayObject) else [contents]
        page[NameObject("/Contents")] = ArrayObject([writer._add_object(draw)] + old)


def _add_name_tree(writer, dests: dict) -> None:
    """The merged document's named destinations (``dests``, name -> array), as one sorted name tree."""
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    if not dests:
        return
    array = ArrayObject()
    for name in sorted(dests):
        array += [TextStringObject(name), dests[name]]
    writer._root_object.setdefault(NameObject("/Names"), DictionaryObject())
    names = writer._root_object["/Names"]
    names[NameObject("/Dests")] = writer._add_object(DictionaryObject({NameObject("/Names"): array}))


def _add_outline(writer, items: list, parent) -> None:
    """Add the outline ``items`` (:func:`bookmark_tree`) under ``parent`` (None: at the top), depth first."""
    from pypdf.generic import Fit

    for label, page, x, y, state, children in items:
        ref = writer.add_outline_item(label, page, parent=parent, fit=Fit.xyz(x, y, 0),
                                      is_open=state != "closed")
        _add_outline(writer, children, ref)


def _copy_document_info(writer, first) -> None:
    """The first part's metadata, language and PDF version, for the merged document."""
    from pypdf.generic import NameObject

    if first.metadata:
        writer.add_metadata({k: v for k, v in first.metadata.items()})
    if "/Lang" in first.trailer["/Root"]:
        writer._root_object[NameObject("/Lang")] = first.trailer["/Root"]["/Lang"]
    writer.pdf_header = first.pdf_header

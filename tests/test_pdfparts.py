"""The PDF laid out in parts (report/pdfparts.py): the merged PDF is the PDF of the whole page
(text and page numbers of every page, links, named destinations, bookmarks), an edit re-lays
out only the part it is in, and an interrupted render leaves the previous report."""

import io
import subprocess
import sys
from functools import partial

import pytest

from report import pdfparts
from report.render import build_only_fetcher

CSS = """
@page { size: A6; margin: 12mm 10mm 14mm 10mm;
  @bottom-center { content: "Page " counter(page) " of " counter(pages); font-size: 7pt; } }
@page :first { @bottom-center { content: none; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; }
.title { page-break-after: always; }
section.q { page-break-before: always; }
.toc a::after { content: leader('.') target-counter(attr(href), page); }
"""
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


def para(i: int, n: int = 40) -> str:
    return "<p>" + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n)) + ".</p>"


def page_html(paras: dict, css: str = CSS, extra: str = "", img: str = "") -> str:
    """A title page with a table of contents, then one section per key with two sub-sections
    of ``paras[key]`` paragraphs each; the last section links back into the first."""
    names = list(paras)
    toc = "".join(f'<li><a href="#{s}">Section {s}</a><ul>'
                  + "".join(f'<li><a href="#{s}-{k}">{s}.{k}</a></li>' for k in (1, 2)) + "</ul></li>"
                  for s in names)
    body = [f'<section class="title"><h1>Report</h1>{img}<nav class="toc"><ul>{toc}</ul></nav></section>']
    for s in names:
        subs = "".join(f'<section id="{s}-{k}"><h3>{s}.{k}</h3>'
                       + "".join(para(j) for j in range(paras[s])) + "</section>" for k in (1, 2))
        link = f'<p>See <a href="#{names[0]}">the first section</a>.</p>' if s == names[-1] else ""
        body.append(f'<section class="q" id="{s}"><h2>Section {s}</h2>{link}{subs}{extra}</section>')
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Parts</title>'
            f"<style>{css}</style></head><body>\n" + "\n".join(body) + "\n</body></html>")


def whole_pdf(html: str, base: str, fetcher) -> bytes:
    import weasyprint
    return weasyprint.HTML(string=html, base_url=base, url_fetcher=fetcher()).write_pdf()


def facts(pdf: bytes, tmp_path) -> dict:
    """What a reader sees: each page's text (footers and table-of-contents numbers included),
    the named destinations, the outline and where every link leads."""
    from pypdf import PdfReader
    path = tmp_path / "facts.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout.split("\f")
    r = PdfReader(io.BytesIO(pdf))
    dests = {k: (r.get_destination_page_number(v), round(float(v.top))) for k, v in r.named_destinations.items()}

    def walk(items, depth=0):
        out = []
        for it in items:
            out += walk(it, depth + 1) if isinstance(it, list) else \
                [(depth, it.title, r.get_destination_page_number(it), round(float(it.top)))]
        return out
    links = []
    for i, p in enumerate(r.pages):
        for a in p.get("/Annots", []) or []:
            a = a.get_object()
            target = dests.get(str(a["/Dest"]), "missing") if "/Dest" in a else str(a["/A"]["/URI"])
            links.append((i, target, [round(float(x)) for x in a["/Rect"]]))
    meta = r.metadata
    return {"pages": len(r.pages), "text": text, "dests": dests, "outline": walk(r.outline),
            "links": links, "title": meta.title if meta else None}


@pytest.fixture
def env(tmp_path):
    base = tmp_path / "build"
    base.mkdir()
    fetcher = partial(build_only_fetcher, base)
    url = str(base.resolve()) + "/"

    def run(html, renderer=None):
        return pdfparts.write_pdf(html, base_url=url, fetcher_factory=fetcher, cache=base / "cache",
                                  renderer=renderer)
    return run, url, fetcher, base


def test_merged_pdf_is_the_whole_pdf(env, tmp_path):
    # catches: page numbers restarting in each part, a table of contents without the other parts'
    # pages, links across parts dropped, outline or named destinations lost, metadata lost
    run, url, fetcher, _ = env
    html = page_html({"a": 6, "b": 3, "c": 5})
    res = run(html)
    assert res.whole is None and [p["name"] for p in res.parts] == ["title", "a", "b", "c"]
    got, want = facts(res.pdf, tmp_path), facts(whole_pdf(html, url, fetcher), tmp_path)
    assert got["pages"] >= 6 and "Page 3 of" in got["text"][2]
    assert got == want
    assert any(page == 0 and target != "missing" for page, target, _ in got["links"])   # the TOC
    last = max(i for i, t in enumerate(got["text"]) if "See the first section" in t)
    assert [t for p, t, _ in got["links"] if p == last] == [want["dests"]["a"]]       # across parts


def test_an_edit_lays_out_only_its_part(env, tmp_path):
    # catches: every part laid out again after an edit (no cache), or a cache that misses the edit
    run, url, fetcher, _ = env
    html = page_html({"a": 6, "b": 3, "c": 5})
    first = run(html)
    assert all(p["rendered"] for p in first.parts)
    assert not any(p["rendered"] for p in run(html).parts)          # nothing changed: nothing laid out
    edited = html.replace("<h3>b.2</h3>", "<h3>b.2</h3><p>An edited sentence.</p>")
    res = run(edited)
    assert [p["name"] for p in res.parts if p["rendered"]] == ["b"]
    assert facts(res.pdf, tmp_path) == facts(whole_pdf(edited, url, fetcher), tmp_path)


def test_a_longer_part_moves_the_page_numbers_not_the_layout(env, tmp_path):
    # catches: footers baked into each part (every later part laid out again, or stale numbers),
    # a table of contents left with the old page numbers
    run, url, fetcher, _ = env
    run(page_html({"a": 6, "b": 3, "c": 5}))
    longer = page_html({"a": 12, "b": 3, "c": 5})
    res = run(longer)
    laid_out = {p["name"] for p in res.parts if p["rendered"]}
    assert laid_out == {"title", "a"}     # the TOC's numbers moved; b and c (its link: to a's start) did not
    assert facts(res.pdf, tmp_path) == facts(whole_pdf(longer, url, fetcher), tmp_path)


def test_a_changed_image_lays_its_part_out_again(env, tmp_path):
    # catches: a cache keyed by the HTML only, reusing a part whose figure file changed
    from PIL import Image
    run, _, _, base = env
    Image.new("RGB", (40, 20), "red").save(base / "fig.png")
    html = page_html({"a": 2, "b": 2}, img='<img src="fig.png" style="width: 2cm">')
    run(html)
    Image.new("RGB", (40, 20), "blue").save(base / "fig.png")
    res = run(html)
    assert [p["name"] for p in res.parts if p["rendered"]] == ["title"]
    (base / "fig.png").unlink()              # and a file that appears or goes
    assert [p["name"] for p in run(html).parts if p["rendered"]] == ["title"]
    Image.new("RGB", (40, 20), "green").save(base / "fig.png")
    assert [p["name"] for p in run(html).parts if p["rendered"]] == ["title"]


@pytest.mark.parametrize("css, why", [
    (CSS + "@page :left { margin-left: 20mm; }", "left/right"),
    (CSS + "h2 { string-set: chapter content(); }", "running headers"),
    (CSS.replace(".title { page-break-after: always; }", "").replace("section.q { page-break-before: always; }", ""),
     "no forced page break"),
])
def test_what_cannot_be_split_is_rendered_whole(env, tmp_path, css, why):
    # catches: parts glued where the whole page would have continued on the same page, or
    # left/right pages and running headers that differ per part
    run, url, fetcher, _ = env
    html = page_html({"a": 2, "b": 1}, css=css)
    res = run(html)
    assert res.whole is not None and why in res.whole
    assert facts(res.pdf, tmp_path)["pages"] == facts(whole_pdf(html, url, fetcher), tmp_path)["pages"]


def test_sections_without_a_forced_break_are_laid_out_together(env, tmp_path):
    # catches: parts cut where the whole page continues on the same page (a section that follows the
    # one before without a page break), a grouping forgotten between builds, or an edit that lays out
    # parts it is not in
    run, url, fetcher, _ = env
    css = CSS + "section.q#b, section.q#c { page-break-before: auto; }"
    html = page_html({"a": 3, "b": 2, "c": 2, "d": 2}, css=css)
    res = run(html)
    assert res.whole is None and [p["name"] for p in res.parts] == ["title", "a+b+c", "d"]
    assert facts(res.pdf, tmp_path) == facts(whole_pdf(html, url, fetcher), tmp_path)
    edited = html.replace("<h3>d.2</h3>", "<h3>d.2</h3><p>An edited sentence.</p>")
    res = run(edited)                          # the grouping is remembered: only d is laid out
    assert [p["name"] for p in res.parts if p["rendered"]] == ["d"]
    edited = edited.replace("<h3>b.1</h3>", "<h3>b.1</h3><p>Another edit.</p>")
    res = run(edited)
    assert [p["name"] for p in res.parts if p["rendered"]] == ["a+b+c"]
    assert facts(res.pdf, tmp_path) == facts(whole_pdf(edited, url, fetcher), tmp_path)


def test_bookmark_tree_nests_like_weasyprint():
    # catches: skipped heading levels (h1 then h3) nested one level too deep
    from types import SimpleNamespace

    from weasyprint.anchors import make_page_bookmark_tree
    from weasyprint.matrix import Matrix
    levels = [1, 3, 2, 4, 4, 1, 2, 6, 3]
    marks = [[0, lv, f"h{i}", 0.0, 0.0, "open"] for i, lv in enumerate(levels)]
    root, last = [], None
    last = [root]
    make_page_bookmark_tree(SimpleNamespace(bookmarks=[(lv, f"h{i}", (0, 0), "open") for i, lv in enumerate(levels)]),
                            [], last, 0, 0, Matrix())

    def shape(tree, ours):
        return [(t[0], shape(t[2], ours)) if not ours else (t[0], shape(t[5], ours)) for t in tree]
    assert shape(pdfparts.bookmark_tree(marks), True) == shape(root, False)


def test_renderer_process_gives_the_same_parts(env, tmp_path):
    # catches: a renderer process that loses parts, mixes up their order or leaves processes behind
    if "tensorflow" in sys.modules:
        pytest.skip("this test process has loaded TensorFlow: parts are laid out in-process")
    run, url, fetcher, _ = env
    html = page_html({"a": 4, "b": 2, "c": 3})
    with pdfparts.Renderer(2) as renderer:
        assert renderer.process is not None
        res = run(html, renderer)
        process = renderer.process
    assert not process.is_alive()
    assert facts(res.pdf, tmp_path) == facts(whole_pdf(html, url, fetcher), tmp_path)


def test_renderer_stops_on_an_error(env):
    # catches: a renderer process (and its workers) left running after Ctrl-C or a template error
    if "tensorflow" in sys.modules:
        pytest.skip("this test process has loaded TensorFlow: parts are laid out in-process")
    with pytest.raises(KeyboardInterrupt):
        with pdfparts.Renderer(2) as renderer:
            process = renderer.process
            raise KeyboardInterrupt
    assert not process.is_alive()


def test_an_interrupted_render_keeps_the_previous_report(tmp_path, monkeypatch):
    # catches: report.pdf (or report.html) written before the merged PDF is complete, or a parts
    # cache left unusable by the interruption
    from report import build as rbuild

    from .test_rebuild import QUICK, _fake_build, _templates
    root, build = _fake_build(tmp_path)
    templates = _templates(tmp_path, "Images: {{ q1.total }}.\n")
    rbuild.build_report(data=str(root), overrides=QUICK, build=build, templates=templates)
    pdf, html = (build / "report.pdf").read_bytes(), (build / "report.html").read_text()
    (templates / "answers" / "a.md").write_text("Images: {{ q1.total }}, edited.\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(pdfparts, "merge", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rbuild.build_report(data=str(root), overrides=QUICK, build=build, templates=templates)
    assert (build / "report.pdf").read_bytes() == pdf and (build / "report.html").read_text() == html
    assert not list(build.glob(".report*.tmp"))
    monkeypatch.undo()
    rbuild.build_report(data=str(root), overrides=QUICK, build=build, templates=templates)
    text = subprocess.run(["pdftotext", str(build / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Images: 12, edited." in text


def test_compiled_templates_cache_keeps_lines_and_sees_edits(tmp_path):
    # catches: a compiled-template cache that loses the line of a typo, or serves a stale template
    from report.render import TemplateError, answer_env, render_answer
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("one\n\n{{ q1.totl }}\n")
    cache = tmp_path / "cache"
    for _ in range(2):                       # compiled, then loaded from the cache (a fresh env)
        with pytest.raises(TemplateError, match=r"a\.md line 3: .*did you mean `q1\.total`\?"):
            render_answer(answer_env(tmp_path, cache=cache), "a.md", {"q1": {"total": 1}})
    assert list(cache.rglob("*.cache"))
    (tmp_path / "answers" / "a.md").write_text("{{ q1.total }} images\n")
    assert "1 images" in render_answer(answer_env(tmp_path, cache=cache), "a.md", {"q1": {"total": 1}})


def _spilling(n: int) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Spill</title><style>{CSS} p {{ line-height: 1.4; }}</style>'
            '</head><body>\n<section class="title"><h1>Report</h1></section>\n<section class="q" id="a"><h2>A</h2>'
            + "".join(f"<p>line {k}</p>" for k in range(n)) + "</section>\n</body></html>")


def test_a_part_that_spills_a_few_lines_is_laid_out_tighter(tmp_path):
    # catches: the stray-page check not run (a page holding only the tail of a section), the line count
    # of the last page wrong, or the tighter layout kept when it does not save a page
    fetcher = partial(build_only_fetcher, tmp_path)

    def section_meta(n: int) -> dict:
        return pdfparts.render_one(pdfparts.part_html(pdfparts.split(_spilling(n)), 1, {}), str(tmp_path), fetcher)[1]
    n = 4
    while section_meta(n)["pages"] == 1:           # the first line count that spills onto a second page
        n += 4
    while section_meta(n - 1)["pages"] == 2:
        n -= 1
    meta = section_meta(n)
    assert meta["pages"] == 2 and meta["last_lines"] == 1
    result = pdfparts.write_pdf(_spilling(n), base_url=str(tmp_path), fetcher_factory=fetcher, cache=tmp_path / "c")
    assert [p["pages"] for p in result.parts] == [1, 1]          # tightened: the stray line moved up
    much = section_meta(n + 40)                                   # a real second page is left alone
    assert much["last_lines"] > pdfparts.STRAY_LINES
    result = pdfparts.write_pdf(_spilling(n + 40), base_url=str(tmp_path), fetcher_factory=fetcher,
                                cache=tmp_path / "d")
    assert [p["pages"] for p in result.parts] == [1, much["pages"]]


def _strips(n: int) -> str:
    """A part of ``n`` lines, then a figure of three strips and its caption, then two lines."""
    split = ("figure { margin: 0.5em 0; } figure img { display: block; width: 100%; } "
             "figure.split img { break-inside: avoid; } figure.split figcaption { break-before: avoid; }")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Strips</title><style>{CSS} {split}'
            '</style></head><body>\n<section class="title"><h1>Report</h1></section>\n<section class="q" id="a">'
            "<h2>A</h2>" + "".join(f"<p>line {k}</p>" for k in range(n))
            + '<figure class="figure split">' + "".join(f'<img src="strip{k}.png">' for k in range(3))
            + "<figcaption>Figure 1. Three strips.</figcaption></figure><p>after one</p><p>after two</p>"
            "</section>\n</body></html>")


def test_a_lone_last_strip_travels_with_the_strip_before(tmp_path):
    # catches: the lone-strip check not run (a page holding the last strip of a figure and a few lines, as
    # page 18 of the default report did), its fill or image facts wrong, or the variant kept when it
    # costs a page or leaves a lone strip too
    from PIL import Image
    for k in range(3):                                # three images, so a page's images count its strips
        Image.new("L", (400, 200), 60 + 40 * k).save(tmp_path / f"strip{k}.png")
    fetcher = partial(build_only_fetcher, tmp_path)

    def section_meta(html: str) -> dict:
        return pdfparts.render_one(pdfparts.part_html(pdfparts.split(html), 1, {}), str(tmp_path), fetcher)[1]
    n = 0
    while not pdfparts._lone_strip(section_meta(_strips(n))):     # lines that push exactly the last strip over
        n += 1
        assert n < 60, "no line count leaves the last strip alone on a page"
    lone = section_meta(_strips(n))
    assert lone["last_image"] and lone["last_fill"] < pdfparts.STRAY_FILL
    kept = section_meta(pdfparts.keep_last_strips(_strips(n)))
    assert kept["pages"] == lone["pages"] and not pdfparts._lone_strip(kept) and kept["last_fill"] > lone["last_fill"]
    result = pdfparts.write_pdf(_strips(n), base_url=str(tmp_path), fetcher_factory=fetcher, cache=tmp_path / "c")
    assert [p["pages"] for p in result.parts] == [1, lone["pages"]]
    from .pdf_layout import image_pages
    (tmp_path / "out.pdf").write_bytes(result.pdf)
    pages = image_pages(tmp_path / "out.pdf")
    assert pages.count(pages[-1]) == 2                             # the kept layout was merged: two strips at the end
    assert pdfparts.keep_last_strips("<p>no figure</p>") is None
    text = section_meta(_spilling(2))                             # one page, nothing to move
    assert not pdfparts._lone_strip(text) and pdfparts._variants(_spilling(2), text) == []

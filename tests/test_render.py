import pytest

from report.render import TemplateError, answer_env, build_only_fetcher, render_answer


def test_undefined_variable_names_template_and_variable(tmp_path):
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("Accuracy {{ q2.accuracy | fmt }} and {{ q9.nothing }}")
    env = answer_env(tmp_path)
    with pytest.raises(TemplateError, match=r"a\.md.*q9"):
        render_answer(env, "a.md", {"q2": {"accuracy": 0.5}})


def test_answer_renders_markdown_and_filters(tmp_path):
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("**{{ x | pct }}** and {{ y | fmt(2) }}")
    html = render_answer(answer_env(tmp_path), "a.md", {"x": 0.123, "y": 2.0})
    assert "<strong>12.3%</strong>" in html and "2.00" in html


def test_sandbox_blocks_unsafe_attributes(tmp_path):
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("{{ x.__class__.__mro__ }}")
    from jinja2.exceptions import SecurityError
    with pytest.raises(SecurityError):
        render_answer(answer_env(tmp_path), "a.md", {"x": 1})


def test_fetcher_serves_build_only(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    (build / "fig.png").write_bytes(b"x")
    fetcher = build_only_fetcher(build)
    ok = fetcher.fetch((build / "fig.png").resolve().as_uri())
    assert ok is not None
    for url in ("http://example.com/x.png", "file:///etc/passwd",
                (build / ".." / "outside.png").as_uri()):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 3


def test_weasyprint_does_not_fetch_outside(tmp_path):
    import weasyprint
    build = tmp_path / "build"
    build.mkdir()
    fetcher = build_only_fetcher(build)
    html = ('<img src="http://example.com/a.png"><img src="file:///etc/passwd">'
            '<link rel="stylesheet" href="https://example.com/s.css"><p>hi</p>')
    pdf = weasyprint.HTML(string=html, base_url=str(build) + "/", url_fetcher=fetcher).write_pdf()
    assert pdf.startswith(b"%PDF")
    assert set(fetcher.refused) >= {"http://example.com/a.png", "file:///etc/passwd"}


def test_answer_templates_hold_no_arithmetic():
    """Issue #23 item 7: counting, arithmetic and choosing between numbers happen in report/ and
    reach the templates as named values. Catches: a Jinja namespace counter or a {% set %} that
    computes (x + 1, a - b, ...) creeping back into the prose the user edits."""
    import re
    from pathlib import Path
    answers = Path(__file__).resolve().parent.parent / "templates" / "answers"
    bad = []
    for path in sorted(answers.glob("*.md")):
        text = path.read_text("utf-8")
        if "namespace(" in text:
            bad.append(f"{path.name}: namespace()")
        for m in re.finditer(r"{%-?\s*set\s+[\w.]+\s*=\s*([^%]*)%}", text):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", "''", m.group(1))     # string literals are names
            if re.search(r"[\w)\]]\s*[-+*/]\s*[\w(]", code):
                bad.append(f"{path.name}: {m.group(0)}")
    assert bad == []




def test_methods_markers_split_an_answer(tmp_path):
    """Catches: text after ``<!-- methods -->`` left in the body, a ``<!-- body -->`` marker that
    does not bring the text back, or a marker printed into the report."""
    from report.render import render_answer_parts, split_parts
    assert split_parts("A.\n\nB.") == ("A.\n\nB.", "")
    body, methods = split_parts("Answer.\n<!-- methods -->\nRule.\n  <!-- body -->\nMore answer.\n<!-- methods -->\nTable.")
    assert body.split() == ["Answer.", "More", "answer."] and methods.split() == ["Rule.", "Table."]
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("**{{ x | pct }}**\n{% if x %}<!-- methods -->{% endif %}\nHow: {{ y }}.\n")
    body, methods = render_answer_parts(answer_env(tmp_path), "a.md", {"x": 0.5, "y": 3})
    assert "50.0%" in body and "How" not in body and "How: 3." in methods and "<!--" not in body + methods
    body, methods = render_answer_parts(answer_env(tmp_path), "a.md", {"x": 0, "y": 3})
    assert "How: 3." in body and methods == ""


def test_appendix_figures_are_numbered_after_the_body():
    """Figure numbers follow print order: the body's figures, then the appendix's. Catches: an
    appendix figure keeping its outline position, so "Figure 3" would print after "Figure 9"
    (and the PDF layout check, which pairs images and captions in order, would mismatch)."""
    from report.render import answer_variables
    outline = [{"name": "q1", "title": "Q1", "subs": [
        {"number": "Q1.1", "title": "t", "answer": "a.md", "figures": ["a"], "tables": ["t1"],
         "appendix_figures": ["b"], "appendix_tables": ["t2"]},
        {"number": "Q1.2", "title": "t", "answer": "b.md", "figures": ["c"], "tables": []}]}]
    v = answer_variables({}, {}, "quick", outline)
    assert v["fig"] == {"a": 1, "c": 2, "b": 3} and v["tab"] == {"t1": 1, "t2": 2}


def test_appendix_flag_reaches_the_outline(monkeypatch):
    """``Appendix("id")`` in a Sub moves that figure or table to the appendix lists of the outline.
    Catches: the flag dropped by layout() (the table would print in the body)."""
    import sys
    import types

    from report.render import layout
    from report.section import Appendix, Sub
    u = Sub("Q9.1", "t", "a.md", figures=("f1", Appendix("f2")), tables=(Appendix("t1"),))
    registry = types.ModuleType("report.registry")
    registry.SECTIONS = (types.SimpleNamespace(name="q9", title="Q9", subs=(u,)),)
    monkeypatch.setitem(sys.modules, "report.registry", registry)
    sub = layout()[0]["subs"][0]
    assert (sub["figures"], sub["appendix_figures"], sub["tables"], sub["appendix_tables"]) == (["f1"], ["f2"], [], ["t1"])


def test_body_pages_counts_the_pages_before_the_methods_appendix(tmp_path):
    """Catches: the contents line of the appendix (with leaders) taken for its heading, or an
    off-by-one in the body page count of the 18-page target."""
    import shutil
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils missing")
    import weasyprint

    from report.render import methods_title
    from tests.pdf_layout import body_pages
    br = '<p style="page-break-before: always">'
    html = (f"<p>{methods_title('Q1 The data')} ........ 3</p>{br}Q1 answer</p>{br}Q2 answer</p>"
            f"{br}</p><h2>{methods_title('Q1 The data')}</h2><p>rules</p>")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(weasyprint.HTML(string=html).write_pdf())
    assert body_pages(pdf) == 3

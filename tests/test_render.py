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



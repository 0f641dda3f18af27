"""Render the report: answer templates (Jinja, then Markdown) into one HTML page, then PDF.

Answer templates are rendered in a Jinja sandbox with StrictUndefined: an unknown variable
is an error naming the template and the variable. WeasyPrint only reads files under build/.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import jinja2
import markdown
from jinja2.sandbox import SandboxedEnvironment

from xaikit.errors import XaikitError

from . import artifacts, explorer
from .context import ROOT, Context
from .registry import SECTIONS

TEMPLATES = ROOT / "templates"


class TemplateError(XaikitError):
    """An answer template could not be rendered."""


def _fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _pct(value, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def _ci(e: dict, digits: int = 3) -> str:
    """An estimate {value or mean, lo, hi} as "v [lo, hi]"."""
    v = e["value"] if "value" in e else e["mean"]
    return f"{v:.{digits}f} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"


def _pval(p: float) -> str:
    """A p-value as "< 0.001" or "= 0.012"."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def answer_env(templates: Path = TEMPLATES) -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(Path(templates) / "answers"),
                               undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(fmt=_fmt, pct=_pct, ci=_ci, pval=_pval)
    return env


def render_answer(env: SandboxedEnvironment, name: str, variables: dict) -> str:
    try:
        text = env.get_template(name).render(**variables)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"answer template {name} is missing from {env.loader.searchpath}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"answer template {name}: undefined variable ({exc.message})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"answer template {name} line {exc.lineno}: {exc.message}") from None
    return markdown.markdown(text, extensions=["tables", "sane_lists"])


def build_only_fetcher(build: Path):
    """A WeasyPrint URL fetcher that serves files under ``build`` and refuses anything else."""
    from urllib.parse import unquote, urlparse

    from weasyprint.urls import URLFetcher

    root = build.resolve()

    class BuildOnlyFetcher(URLFetcher):
        refused: list = []

        def fetch(self, url, headers=None):
            parsed = urlparse(url)
            if parsed.scheme == "file":
                path = Path(unquote(parsed.path)).resolve()
                if root in path.parents:
                    return super().fetch(url, headers)
            self.refused.append(url)
            raise ValueError(f"refused to fetch {url!r}: only files under {root} are allowed")

    return BuildOnlyFetcher(allowed_protocols=("file",))


# Figures are scaled to fit the page's text block (A4, margins of report.css) with room for
# their caption, so a figure and its caption always fit on one page.
MAX_WIDTH_IN, MAX_HEIGHT_IN = 7.0, 8.6


def _size_in(png: Path, dpi: int = 130) -> float:
    """Printed width of a figure PNG saved at ``dpi`` (small charts stay small), reduced so
    that neither its width nor its height exceeds the text block."""
    from PIL import Image
    try:
        with Image.open(png) as im:
            w, h = im.width / dpi, im.height / dpi
    except OSError:
        return 6.0
    scale = min(1.0, MAX_WIDTH_IN / w, MAX_HEIGHT_IN / h)
    return round(w * scale, 2)


def answer_variables(numbers: dict, config: dict, profile: str) -> dict:
    """What the answer templates see: the sections' numbers, figure and table numbers, the config."""
    fig_no, tab_no = {}, {}
    for section in SECTIONS:
        for sub in section.subs:
            for f in sub.figures:
                fig_no.setdefault(f, len(fig_no) + 1)
            for t in sub.tables:
                tab_no.setdefault(t, len(tab_no) + 1)
    return dict(numbers, fig=fig_no, tab=tab_no, config=dict(config), profile=profile)


def render(ctx: Context, results: dict, *, pdf: bool = True, templates: Path = TEMPLATES) -> Path:
    from .provenance import collect
    numbers = {name: res["numbers"] for name, res in results.items()}
    numbers["provenance"] = collect(ctx)
    artifacts.atomic_write_json(ctx.build / "numbers.json", numbers)
    variables = answer_variables(numbers, ctx.cfg.as_dict(), ctx.cfg.profile)
    fig_no, tab_no = variables["fig"], variables["tab"]
    env = answer_env(templates)
    sections = []
    for section in SECTIONS:
        res = results[section.name]
        subs = []
        for sub in section.subs:
            subs.append({
                "number": sub.number, "title": sub.title,
                "answer": render_answer(env, sub.answer, variables),
                "figures": [dict(res["figures"][f], number=fig_no[f],
                                 width_in=_size_in(ctx.build / res["figures"][f]["file"]))
                            for f in sub.figures],
                "tables": [dict(res["tables"][t], number=tab_no[t]) for t in sub.tables]})
        sections.append({"name": section.name, "title": section.title, "subs": subs})
    page_env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates),
                                  autoescape=True, undefined=jinja2.StrictUndefined)
    findings = render_answer(env, "findings.md", variables)
    html = page_env.get_template("report.html.j2").render(
        sections=sections, findings=findings, provenance=numbers["provenance"], css=(Path(templates) / "report.css").read_text("utf-8"),
        profile=ctx.cfg.profile, dataset=ctx.listing.root,
        created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), explorer=explorer.links(ctx.build),
        n_images=len(ctx.listing.records))
    html_path = ctx.build / "report.html"
    artifacts.atomic_write_text(html_path, html)
    if pdf:
        import weasyprint
        doc = weasyprint.HTML(string=html, base_url=str(ctx.build.resolve()) + "/",
                              url_fetcher=build_only_fetcher(ctx.build))
        artifacts.atomic_write_bytes(ctx.build / "report.pdf", doc.write_pdf())
    return html_path

"""Render the report: answer templates (Jinja, then Markdown) into one HTML page, then PDF.

Answer templates are rendered in a Jinja sandbox with StrictUndefined: an unknown variable
is an error naming the template, its line and the closest known variable. The page is
composed in memory and written only when every template rendered (HTML and PDF each to a
temporary file, then renamed), so a typo leaves the previous report as it was. The PDF is laid
out per top-level section, each part cached by its content (:mod:`report.pdfparts`).
WeasyPrint only reads files under build/. This module imports no TensorFlow: the report's
layout (sections, sub-questions, figures) comes from the caller or, lazily, the registry.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from pathlib import Path

import jinja2
import markdown
from jinja2.sandbox import SandboxedEnvironment

from xaikit.errors import XaikitError

from . import artifacts, explorer, figures
from .context import ROOT, Context

TEMPLATES = ROOT / "templates"


class TemplateError(XaikitError):
    """An answer template could not be rendered."""


def layout() -> list[dict]:
    """The report's outline as plain data: sections with their sub-questions, answer templates,
    figure and table ids (what rendering needs of the registry, storable in JSON). Ids marked
    :class:`report.section.Appendix` are listed under ``appendix_figures`` / ``appendix_tables``."""
    from .registry import SECTIONS      # imports the question modules, hence TensorFlow
    from .section import Appendix

    def split(ids):
        return [i for i in ids if not isinstance(i, Appendix)], [str(i) for i in ids if isinstance(i, Appendix)]

    out = []
    for s in SECTIONS:
        subs = []
        for u in s.subs:
            figs, app_figs = split(u.figures)
            tabs, app_tabs = split(u.tables)
            subs.append({"number": u.number, "title": u.title, "answer": u.answer,
                         "figures": figs, "tables": tabs,
                         "appendix_figures": app_figs, "appendix_tables": app_tabs})
        out.append({"name": s.name, "title": s.title, "subs": subs})
    return out


METHODS_TITLE = "Methods and statistics"     # the appendix's headings start with this
GLOSSARY, GLOSSARY_TITLE = "glossary.md", "glossary, in plain words"   # the appendix's first part (optional template)


def methods_title(section_title: str) -> str:
    """Heading of a question's part of the appendix ("Methods and statistics: Q3 Integrated Gradients")."""
    return f"{METHODS_TITLE}: {section_title}"


def appendix_id(number: str) -> str:
    """HTML id of a sub-question's appendix item: "Q3.4" -> "A3-4" (its body part is "Q3-4")."""
    return "A" + number.removeprefix("Q").replace(".", "-")


def document_order(outline: list, kind: str) -> list[str]:
    """Figure (``kind="figures"``) or table ids in the order they print: the body's, then the
    appendix's (numbers follow this order)."""
    body = [i for sec in outline for sub in sec["subs"] for i in sub[kind]]
    app = [i for sec in outline for sub in sec["subs"] for i in sub.get("appendix_" + kind, [])]
    return body + app


_PART = re.compile(r"^[ \t]*<!--\s*(methods|body)\s*-->[ \t]*$", re.M)


def split_parts(text: str) -> tuple[str, str]:
    """(body, methods) of a rendered answer's Markdown: text after a line ``<!-- methods -->``
    goes to the appendix, text after ``<!-- body -->`` back to the body (markers may alternate)."""
    parts = {"body": [], "methods": []}
    where, pos = "body", 0
    for m in _PART.finditer(text):
        parts[where].append(text[pos:m.start()])
        where, pos = m.group(1), m.end()
    parts[where].append(text[pos:])
    return "\n\n".join(parts["body"]).strip(), "\n\n".join(parts["methods"]).strip()


def known_paths(variables: dict, depth: int = 6) -> list[str]:
    """Every dotted variable path a template can use (``q3.consistency.class_specific``)."""
    out: list[str] = []

    def walk(prefix: str, value, level: int) -> None:
        out.append(prefix)
        if isinstance(value, dict) and level < depth:
            for k, v in value.items():
                if isinstance(k, str) and k.isidentifier():
                    walk(f"{prefix}.{k}", v, level + 1)

    for name, value in variables.items():
        walk(name, value, 1)
    return out


_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_MISSING = re.compile(r"has no attribute '([^']+)'|^'([^']+)' is undefined|no element '?([^']+?)'?$")


def closest_name(variables: dict, source_line: str, message: str) -> tuple[str, str | None]:
    """(the mistyped path as written on the line, the closest known path or None)."""
    m = _MISSING.search(message)
    missing = next((g for g in m.groups() if g), None) if m else None
    if missing is None:
        return "", None
    known = known_paths(variables)
    for expr in _DOTTED.findall(source_line):
        parts = expr.split(".")
        if missing in parts:
            depth = parts.index(missing) + 1
            typed = ".".join(parts[:depth])
            if depth > 1 and parts[0] not in variables:   # a loop variable: match its last name
                leaves = {k.rsplit(".", 1)[-1] for k in known}
                close = difflib.get_close_matches(missing, sorted(leaves), n=1, cutoff=0.6)
                return typed, (".".join(parts[:depth - 1] + [close[0]]) if close else None)
            same_depth = [k for k in known if k.count(".") == depth - 1]
            close = difflib.get_close_matches(typed, same_depth, n=1, cutoff=0.6)
            if not close and len(parts) > depth:    # short names ("q9"): judge by the whole path
                longer = [k for k in known if k.count(".") == len(parts) - 1]
                close = [".".join(c.split(".")[:depth])
                         for c in difflib.get_close_matches(expr, longer, n=1, cutoff=0.75)]
            return typed, (close[0] if close else None)
    leaves = {k.rsplit(".", 1)[-1]: k for k in known}
    close = difflib.get_close_matches(missing, list(leaves), n=1, cutoff=0.6)
    return missing, (leaves[close[0]] if close else None)


def _template_line(exc: BaseException, filename: str) -> int | None:
    """Line of ``filename`` where ``exc`` was raised (Jinja maps template frames to their file)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _shown(path: str) -> str:
    p = Path(path)
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p)


def _fmt(value, digits: int = 3) -> str:
    if value != value:                         # NaN: not computed (the prose gives the reason)
        return "not computed"
    return f"{value:.{digits}f}"


def _pct(value, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def _ci(e: dict, digits: int = 3) -> str:
    """An estimate {value or mean, lo, hi} as "v [lo, hi]"."""
    v = e["value"] if "value" in e else e["mean"]
    if v is None or v != v:                    # NaN: a measure the data did not allow (its reason is printed)
        return "not computed"
    if e["lo"] != e["lo"] or e["hi"] != e["hi"]:
        return f"{v:.{digits}f} (no interval: too few images)"
    return f"{v:.{digits}f} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"


def _pval(p: float) -> str:
    """A p-value as "< 0.001" or "= 0.012"."""
    if p is None or p != p:
        return "not computed"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _bytecode_cache(cache: Path | None, kind: str) -> jinja2.BytecodeCache | None:
    """Compiled templates kept on disk (a fresh process otherwise compiles every template
    again: about 1 s of a rebuild). Jinja keys each entry by the template's file name and source
    checksum; the directory adds what else the compiled code depends on (the environment's
    kind and Jinja's version)."""
    if cache is None:
        return None
    directory = Path(cache) / f"{kind}-jinja{jinja2.__version__}"
    directory.mkdir(parents=True, exist_ok=True)
    return jinja2.FileSystemBytecodeCache(str(directory))


def answer_env(templates: Path = TEMPLATES, cache: Path | None = None) -> SandboxedEnvironment:
    """The answer templates' environment; ``cache``: a directory for compiled templates."""
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(Path(templates) / "answers"),
                               undefined=jinja2.StrictUndefined, autoescape=False,
                               bytecode_cache=_bytecode_cache(cache, "answers"))
    env.filters.update(fmt=_fmt, pct=_pct, ci=_ci, pval=_pval)
    return env


def render_answer(env: SandboxedEnvironment, name: str, variables: dict) -> str:
    """One answer template as HTML (body and methods parts in their written order)."""
    return _markdown(render_text(env, name, variables))


def render_answer_parts(env: SandboxedEnvironment, name: str, variables: dict) -> tuple[str, str]:
    """(body HTML, methods HTML) of one answer template (see :func:`split_parts`)."""
    body, methods = split_parts(render_text(env, name, variables))
    return _markdown(body), (_markdown(methods) if methods else "")


def _markdown(text: str) -> str:
    return markdown.markdown(text, extensions=["tables", "sane_lists"])


def render_text(env: SandboxedEnvironment, name: str, variables: dict) -> str:
    """One answer template rendered by Jinja (Markdown); any error is a one-line TemplateError
    naming the file, the line and, for an unknown variable or filter, the closest known one."""
    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"answer template {name} is missing from {env.loader.searchpath}") from None
    except jinja2.TemplateSyntaxError as exc:
        hint = ""
        m = re.search(r"No filter named '([^']+)'", exc.message or "")
        close = difflib.get_close_matches(m.group(1), list(env.filters), n=1) if m else []
        if close:
            hint = f"; did you mean `{close[0]}`?"
        raise TemplateError(f"answer template {_shown(exc.filename or name)} line {exc.lineno}: "
                            f"{exc.message}{hint}") from None
    where = _shown(template.filename or name)
    try:
        text = template.render(**variables)
    except jinja2.UndefinedError as exc:
        line = _template_line(exc, template.filename)
        source = (Path(template.filename).read_text("utf-8").splitlines()[line - 1]
                  if line and template.filename and Path(template.filename).exists() else "")
        typed, close = closest_name(variables, source, exc.message or "")
        what = f"`{typed}`" if typed else f"({exc.message})"
        hint = f"; did you mean `{close}`?" if close else "; see build/numbers.json for the names"
        raise TemplateError(f"answer template {where} line {line or '?'}: undefined variable "
                            f"{what}{hint}") from None
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
        line = _template_line(exc, template.filename)
        raise TemplateError(f"answer template {where} line {line or '?'}: "
                            f"{type(exc).__name__}: {exc}") from None
    return text


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


UNBROKEN_MAX_SHARE = 0.4     # an image cannot break across pages: none prints taller than this share of a page


def _size_in(path: Path) -> float:
    """Printed width of a figure file (see :func:`report.figures.printed_width`), narrowed where
    needed so that the image prints at most ``UNBROKEN_MAX_SHARE`` of the text block high: an image
    that does not fit in what is left of a page moves to the next one, so it can leave at most that
    share of a page empty (tall grids are stored as strips and stay at full width)."""
    from PIL import Image
    width = figures.printed_width(path)
    try:
        with Image.open(path) as im:
            height = width * im.height / im.width
    except OSError:
        return width
    cap = UNBROKEN_MAX_SHARE * figures.MAX_HEIGHT_IN
    return round(width * cap / height, 2) if height > cap else width


def answer_variables(numbers: dict, config: dict, profile: str, outline: list | None = None) -> dict:
    """What the answer templates see: the sections' numbers, figure and table numbers, the config."""
    outline = outline if outline is not None else layout()
    fig_no = {f: i for i, f in enumerate(dict.fromkeys(document_order(outline, "figures")), 1)}
    tab_no = {t: i for i, t in enumerate(dict.fromkeys(document_order(outline, "tables")), 1)}
    return dict(numbers, fig=fig_no, tab=tab_no, config=dict(config), profile=profile)


PDF_WORKERS = 2     # processes laying out the PDF's parts (report.pdfparts); at most the CPU count


def pdf_renderer(pdf: bool = True):
    """The processes that lay out the PDF (report.pdfparts.Renderer), to enter before TensorFlow
    is imported: they are forked, which is unsafe once TensorFlow's threads run, and a build that
    forks them late lays its parts out one after another in its own process."""
    from .pdfparts import Renderer
    return Renderer(PDF_WORKERS if pdf else 0)


def render(ctx: Context, results: dict, *, pdf: bool = True, templates: Path = TEMPLATES,
           outline: list | None = None, model_names=(), renderer=None) -> Path:
    """Write numbers.json, then report.html and report.pdf once both are composed: an error in
    any template leaves the previous report in place. Without a ``renderer`` (see
    :func:`pdf_renderer`), its processes start first, importing WeasyPrint while the page is composed."""
    if renderer is not None:
        return _render(ctx, results, renderer, pdf=pdf, templates=templates, outline=outline,
                       model_names=model_names)
    with pdf_renderer(pdf) as own:
        return _render(ctx, results, own, pdf=pdf, templates=templates, outline=outline,
                       model_names=model_names)


def _render(ctx: Context, results: dict, renderer, *, pdf: bool, templates: Path,
            outline: list | None, model_names) -> Path:
    """:func:`render` with its ``renderer``: numbers.json, then the page composed, then report.html and report.pdf."""
    outline = outline if outline is not None else layout()
    numbers = _write_numbers(ctx, results, model_names)
    variables = answer_variables(numbers, ctx.cfg.as_dict(), ctx.cfg.profile, _numbered(outline, results))
    env = answer_env(templates, cache=ctx.build / "cache" / "templates")
    sections, appendix = [], []
    for section in outline:
        body, methods = _section_parts(ctx, env, variables, section, results[section["name"]])
        sections.append(body)
        if methods is not None:
            appendix.append(methods)
    html = _page_html(ctx, env, variables, templates, sections, appendix, numbers["provenance"])
    return _write_report(ctx, html, renderer, pdf=pdf)


def _write_numbers(ctx: Context, results: dict, model_names) -> dict:
    """Every section's numbers and the build's provenance, written to numbers.json."""
    from .provenance import collect
    numbers = {name: res["numbers"] for name, res in results.items()}
    numbers["provenance"] = collect(ctx, results, model_names)
    artifacts.atomic_write_json(ctx.build / "numbers.json", numbers)
    return numbers


def _numbered(outline: list, results: dict) -> list:
    """``outline`` with the figures and tables of skipped sections taken out (no gaps in their numbering)."""
    return [dict(sec, subs=[dict(u, figures=[], tables=[], appendix_figures=[], appendix_tables=[])
                            for u in sec["subs"]])
            if results[sec["name"]]["numbers"].get("skipped") else sec for sec in outline]


def _figure_items(ctx: Context, res: dict, ids: list, fig_no: dict) -> list[dict]:
    """The page's data of a section's figures ``ids``: number, strips and printed width."""
    return [dict(res["figures"][f], number=fig_no[f],
                 strips=res["figures"][f].get("strips") or [res["figures"][f]["file"]],
                 width_in=_size_in(ctx.build / res["figures"][f]["file"])) for f in ids]


def _table_items(res: dict, ids: list, tab_no: dict) -> list[dict]:
    """The page's data of a section's tables ``ids``, with their numbers."""
    return [dict(res["tables"][t], number=tab_no[t]) for t in ids]


def _section_parts(ctx: Context, env, variables: dict, section: dict, res: dict) -> tuple[dict, dict | None]:
    """A section's part of the page and its part of the appendix (None when it has nothing there)."""
    fig_no, tab_no = variables["fig"], variables["tab"]
    subs, items = [], []
    skipped = res["numbers"].get("skipped")      # a section the model in use cannot answer (Q4 without a conv layer)
    for sub in section["subs"]:
        if skipped:
            subs.append({"number": sub["number"], "title": sub["title"], "figures": [], "tables": [],
                         "answer": f"<p><strong>Skipped.</strong> {skipped}.</p>", "appendix": None})
            continue
        body, methods = render_answer_parts(env, sub["answer"], variables)
        item = {"number": sub["number"], "title": sub["title"], "id": appendix_id(sub["number"]),
                "back": sub["number"].replace(".", "-"), "methods": methods,
                "figures": _figure_items(ctx, res, sub.get("appendix_figures", []), fig_no),
                "tables": _table_items(res, sub.get("appendix_tables", []), tab_no)}
        has_item = bool(methods or item["figures"] or item["tables"])
        if has_item:
            items.append(item)
        subs.append({"number": sub["number"], "title": sub["title"], "answer": body,
                     "figures": _figure_items(ctx, res, sub["figures"], fig_no),
                     "tables": _table_items(res, sub["tables"], tab_no),
                     "appendix": item["id"] if has_item else None})
    part = {"name": section["name"], "title": section["title"], "subs": subs}
    if not items:
        return part, None
    return part, {"name": "methods-" + section["name"], "title": methods_title(section["title"]),
                  "back": section["name"], "subs": items}


def _page_html(ctx: Context, env, variables: dict, templates: Path, sections: list, appendix: list,
               provenance: dict) -> str:
    """The report's HTML page: the sections, the findings, the appendix (glossary, methods) and the provenance."""
    findings = render_answer(env, "findings.md", variables)
    glossary = (render_answer(env, GLOSSARY, variables)
                if (Path(templates) / "answers" / GLOSSARY).exists() else "")
    return render_page(templates, cache=ctx.build / "cache" / "templates", sections=sections, appendix=appendix,
                       findings=findings, glossary=glossary, glossary_title=methods_title(GLOSSARY_TITLE),
                       provenance=provenance,
                       css=(Path(templates) / "report.css").read_text("utf-8"),
                       profile=ctx.cfg.profile, dataset=ctx.listing.root,
                       created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),   # the provenance appendix
                       created_day=_dt.date.today().isoformat(),    # the title page: its PDF part changes once a day
                       n_images=len(ctx.listing.records), references=load_references(templates),
                       explorer=explorer.links(ctx.build))


def _write_report(ctx: Context, html: str, renderer, *, pdf: bool) -> Path:
    """report.html and, when ``pdf``, report.pdf (laid out first, so that a failed layout writes neither)."""
    html_path = ctx.build / "report.html"
    pdf_bytes = None
    if pdf:
        from functools import partial

        from . import pdfparts
        from .context import log
        done = pdfparts.write_pdf(html, base_url=str(ctx.build.resolve()) + "/",
                                  fetcher_factory=partial(build_only_fetcher, ctx.build),
                                  cache=ctx.build / "cache" / "pdf-parts", renderer=renderer)
        pdf_bytes = done.pdf
        log(done.summary())
    artifacts.atomic_write_text(html_path, html)
    if pdf_bytes is not None:
        artifacts.atomic_write_bytes(ctx.build / "report.pdf", pdf_bytes)
    return html_path


def load_references(templates: Path = TEMPLATES) -> list[dict]:
    """The cited works (templates/references.toml), each with its links, in file order."""
    import tomllib
    path = Path(templates) / "references.toml"
    if not path.exists():
        return []
    try:
        works = tomllib.loads(path.read_text("utf-8")).get("work", [])
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{_shown(str(path))}: {exc}; expected [[work]] tables") from None
    out = []
    for i, w in enumerate(works, 1):
        missing = [k for k in ("authors", "title", "venue", "year") if k not in w]
        if missing or not ("doi" in w or "arxiv" in w or "jstor" in w):
            raise TemplateError(f"{_shown(str(path))}: work {i} ({w.get('title', '?')}) lacks "
                                f"{missing or ['doi, arxiv or jstor']}; expected authors, title, venue, "
                                "year and a doi, an arxiv id or (for works without either) a JSTOR id")
        links = ([("doi:" + w["doi"], "https://doi.org/" + w["doi"])] if "doi" in w else []) + \
                ([("arXiv:" + w["arxiv"], "https://arxiv.org/abs/" + w["arxiv"])] if "arxiv" in w else []) + \
                ([("JSTOR " + w["jstor"], "https://www.jstor.org/stable/" + w["jstor"])] if "jstor" in w else [])
        out.append(dict(w, links=links))
    return out


def render_page(templates: Path, cache: Path | None = None, **context) -> str:
    """The page template (report.html.j2) with ``context``; errors name the file and line."""
    page_env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates),
                                  autoescape=True, undefined=jinja2.StrictUndefined,
                                  bytecode_cache=_bytecode_cache(cache, "page"))
    try:
        template = page_env.get_template("report.html.j2")
        return template.render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"page template {_shown(exc.filename or 'report.html.j2')} line "
                            f"{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        line = _template_line(exc, str(Path(templates) / "report.html.j2"))
        raise TemplateError(f"page template {_shown(str(Path(templates) / 'report.html.j2'))} line "
                            f"{line or '?'}: undefined variable ({exc.message})") from None

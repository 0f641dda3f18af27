"""Every work the prose cites is in templates/references.toml, and every work there is cited."""

import ast
import re
from pathlib import Path

import pytest

from report.render import TemplateError, load_references

from .conftest import ROOT

# "Adebayo et al. 2018", "Kermany et al. (2018)", "Rong et al. (2022, ROAD)"; a bare
# "Adebayo et al." must name a listed author
CITED = re.compile(r"([A-Z][\w'-]+) et al\.(?:'s)?,? \(?(\d{4})")
BARE = re.compile(r"([A-Z][\w'-]+) et al\.(?!,? \(?\d{4})")


def _section_strings(path: Path) -> str:
    """String literals of a question module (captions, titles, table labels), not docstrings."""
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return "\n".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                     and isinstance(n.value, str) and id(n) not in docstrings)


def prose() -> dict[str, str]:
    texts = {p.name: p.read_text("utf-8") for p in sorted((ROOT / "templates" / "answers").glob("*.md"))}
    texts["report.html.j2"] = (ROOT / "templates" / "report.html.j2").read_text("utf-8")
    for p in sorted((ROOT / "report").glob("q[0-9]_*.py")):
        texts[p.name] = _section_strings(p)
    return texts


def surname(work: dict) -> str:
    return work["authors"].split(",")[0].strip()


def citations(texts: dict[str, str]) -> tuple[set, set]:
    dated = {(m.group(1), int(m.group(2))) for t in texts.values() for m in CITED.finditer(t)}
    bare = {m.group(1) for t in texts.values() for m in BARE.finditer(t)}
    return dated, bare


def single_author_citations(works: list[dict], texts: dict[str, str]) -> set:
    """Works of one author ("Rubin, D. B.") are cited as "Rubin 1981" or "Rubin (1981)"."""
    out = set()
    for w in works:
        if w["authors"].count(",") == 1:
            pat = re.compile(rf"{re.escape(surname(w))}'?s? \(?{int(w['year'])}")
            if any(pat.search(t) for t in texts.values()):
                out.add((surname(w), int(w["year"])))
    return out


def problems(works: list[dict], texts: dict[str, str]) -> list[str]:
    listed = {(surname(w), int(w["year"])) for w in works}
    dated, bare = citations(texts)
    dated |= single_author_citations(works, texts)
    out = [f"cited but not in references.toml: {a} et al. {y}" for a, y in sorted(dated - listed)]
    out += [f"cited without a year and not in references.toml: {a} et al." for a in
            sorted(bare - {a for a, _ in listed})]
    out += [f"in references.toml but never cited: {a} et al. {y}" for a, y in sorted(listed - dated)]
    return out


def test_prose_and_references_agree():
    assert problems(load_references(), prose()) == []


def test_the_check_sees_a_missing_and_an_uncited_work():
    # catches: a check that passes whatever the file and the prose say
    works = load_references()
    texts = prose()
    assert any("Arun" in s for s in texts.values())        # cited in a Q5 caption
    dropped = [w for w in works if surname(w) != "Arun"]
    assert problems(dropped, texts) == ["cited but not in references.toml: Arun et al. 2021"]
    extra = works + [dict(works[0], authors="Nobody, A.", year=1999)]
    assert problems(extra, texts) == ["in references.toml but never cited: Nobody et al. 1999"]
    assert problems(works, dict(texts, x="as Smith et al. 2020 and Jones et al. show")) == [
        "cited but not in references.toml: Smith et al. 2020",
        "cited without a year and not in references.toml: Jones et al."]


def test_every_work_has_its_bibliographic_fields():
    for w in load_references():
        assert w["title"] and w["venue"] and 1900 < int(w["year"]) < 2100
        assert w["links"], w["title"]
        assert all(url.startswith(("https://doi.org/10.", "https://arxiv.org/abs/", "https://www.jstor.org/stable/"))
                   for _, url in w["links"])


def test_a_work_without_a_doi_or_arxiv_id_is_one_line(tmp_path):
    (tmp_path / "references.toml").write_text('[[work]]\nauthors = "A, B."\ntitle = "T"\n'
                                              'venue = "V"\nyear = 2020\n')
    with pytest.raises(TemplateError, match="a doi, an arxiv id") as info:
        load_references(tmp_path)
    assert "\n" not in str(info.value)

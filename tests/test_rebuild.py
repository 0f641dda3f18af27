"""The edit-rebuild loop: a template typo keeps the previous report and names file, line and
the closest variable; a rebuild with nothing stale imports no TensorFlow; the provenance shows
when and in how long each reused stage was computed."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from report import build as rbuild
from report.render import TemplateError, answer_env, closest_name, render_answer

from .conftest import ROOT, make_dataset

QUICK = ["data.image_size=32"]
OUTLINE = [{"name": "q1", "title": "Q1. Data", "subs": [
    {"number": "Q1.1", "title": "Counts", "answer": "a.md", "figures": [], "tables": []}]}]


def test_typo_names_file_line_and_closest_variable(tmp_path):
    # catches: the message without the line, or without a suggestion
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "q3_3.md").write_text(
        "Consistency.\n\n{% if q3.consistancy.class_specific %}yes{% endif %}\n")
    variables = {"q3": {"consistency": {"class_specific": True}, "regions": {}}, "q1": {"total": 3}}
    with pytest.raises(TemplateError) as info:
        render_answer(answer_env(tmp_path), "q3_3.md", variables)
    msg = str(info.value)
    assert "q3_3.md line 3" in msg and "`q3.consistancy`" in msg
    assert "did you mean `q3.consistency`?" in msg and "\n" not in msg


@pytest.mark.parametrize("line, message, expected", [
    ("{{ q1.totl | fmt(0) }} images", "'dict object' has no attribute 'totl'", ("q1.totl", "q1.total")),
    ("{{ q2.test.at_vall.accuracy }}", "'dict object' has no attribute 'at_vall'",
     ("q2.test.at_vall", "q2.test.at_val")),
    ("{{ q9.total }}", "'q9' is undefined", ("q9", "q1")),
    ("{{ zzz }}", "'zzz' is undefined", ("zzz", None)),
    ("{% for w in q2.runs %}{{ w.acuracy }}{% endfor %}", "'dict object' has no attribute 'acuracy'",
     ("w.acuracy", "w.accuracy")),
])
def test_closest_name(line, message, expected):
    variables = {"q1": {"total": 3}, "q2": {"test": {"at_val": {"accuracy": 0.9}}}}
    assert closest_name(variables, line, message) == expected


def test_unknown_filter_suggests_the_closest(tmp_path):
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "a.md").write_text("one\n{{ x | fmtt(2) }}\n")
    with pytest.raises(TemplateError, match=r"a\.md line 2: .*fmtt.*did you mean `fmt`\?"):
        render_answer(answer_env(tmp_path), "a.md", {"x": 1.0})


def _templates(tmp_path, answer: str):
    templates = tmp_path / "templates"
    (templates / "answers").mkdir(parents=True)
    for name in ("report.html.j2", "report.css", "references.toml"):
        shutil.copy(ROOT / "templates" / name, templates / name)
    (templates / "answers" / "a.md").write_text(answer)
    (templates / "answers" / "findings.md").write_text("Findings.\n")
    return templates


def _fake_build(tmp_path):
    """A dataset and a build whose only section (q1) is stored, with a stages.json that says
    everything is fresh (fingerprint of the real sources, outline of one sub-question)."""
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2}, size=32)
    build = tmp_path / "build"
    ctx = rbuild.make_context(str(root), None, QUICK, None, build)
    result = {"key": "k1", "seconds": 12.5, "computed_at": "2026-11-29 10:00 +0000",
              "numbers": {"total": 12}, "figures": {}, "tables": {}}
    (build / "sections" / "q1").mkdir(parents=True)
    (build / "sections" / "q1" / "result.json").write_text(json.dumps(result))
    rbuild.write_manifest(ctx, {"q1": "k1"}, OUTLINE, [], rbuild.fingerprint(ctx, rbuild.manifest_sources()))
    return root, build


def test_typo_keeps_the_previous_report(tmp_path, monkeypatch):
    # catches: the old report deleted (or overwritten) before every template has rendered
    root, build = _fake_build(tmp_path)
    (build / "report.html").write_text("previous html")
    (build / "report.pdf").write_bytes(b"%PDF previous")
    templates = _templates(tmp_path, "Images: {{ q1.total }}\n\n{{ q1.totl }}\n")
    with pytest.raises(TemplateError, match=r"a\.md line 3: undefined variable `q1\.totl`; "
                                            r"did you mean `q1\.total`\?"):
        rbuild.build_report(data=str(root), overrides=QUICK, build=build, templates=templates)
    assert (build / "report.html").read_text() == "previous html"
    assert (build / "report.pdf").read_bytes() == b"%PDF previous"


def test_fresh_rebuild_imports_no_tensorflow_and_shows_past_costs(tmp_path):
    # catches: TensorFlow imported at module level on the render path; "reused, 0.0 s"
    root, build = _fake_build(tmp_path)
    templates = _templates(tmp_path, "Images: {{ q1.total }}.\n")
    code = textwrap.dedent(f"""
        import sys
        from report.build import build_report
        build_report(data={str(root)!r}, overrides={QUICK!r}, build={str(build)!r},
                     templates={str(templates)!r}, pdf=False)
        print("TF" if "tensorflow" in sys.modules or "keras" in sys.modules else "no TF")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "no TF"
    html = (build / "report.html").read_text()
    assert "Images: 12." in html
    stages = json.loads((build / "numbers.json").read_text())["provenance"]["stages"]
    q1 = next(s for s in stages if s["stage"] == "q1")
    assert q1 == {"stage": "q1", "how": "reused", "computed_at": "2026-11-29 10:00 +0000",
                  "seconds": 12.5}
    assert "2026-11-29 10:00 +0000" in html
    assert "References" in html and "Sanity checks for saliency maps" in html


def test_a_changed_input_is_not_fresh(tmp_path):
    # catches: a fingerprint that ignores the config (or the data)
    root, build = _fake_build(tmp_path)
    same = rbuild.make_context(str(root), None, QUICK, None, build)
    assert rbuild.fresh_results(same) is not None
    other = rbuild.make_context(str(root), None, QUICK + ["train.epochs=7"], None, build)
    assert rbuild.fresh_results(other) is None
    (root / "test" / "NORMAL" / "IM-0000-0001.jpeg").unlink()
    assert rbuild.fresh_results(rbuild.make_context(str(root), None, QUICK, None, build)) is None


def test_a_source_edited_during_the_build_is_not_trusted_next_time(tmp_path, monkeypatch):
    # catches: the manifest fingerprint (or a stage key) taken after the stages ran, so a file
    # edited mid-build labels results of the old code as fresh for the new one
    root, build = _fake_build(tmp_path)
    templates = _templates(tmp_path, "Images: {{ q1.total }}.\n")
    prints = iter(["before", "after", "after", "after"])
    monkeypatch.setattr(rbuild, "fingerprint", lambda ctx, sources: next(prints))
    stored = json.loads((build / "sections" / "q1" / "result.json").read_text())
    monkeypatch.setattr(rbuild, "check_splits", lambda ctx: None)
    monkeypatch.setattr("report.render.layout", lambda: OUTLINE)
    monkeypatch.setattr(rbuild, "run_sections", lambda ctx, force, retire=False, **kw: ({"q1": stored}, {"q1": "k1"}))
    rbuild.build_report(data=str(root), overrides=QUICK, build=build, templates=templates, pdf=False,
                        force=("q1",))
    assert json.loads((build / rbuild.MANIFEST).read_text())["fingerprint"] == "before"


def test_stage_keys_hash_the_code_that_runs_not_a_later_edit(tmp_path):
    # catches: a source edited while a build runs hashed in its new form while the old code, already
    # imported, computes the stage (the next build would then trust a result of the old code)
    from report import SOURCES_AT_START, artifacts

    mod = tmp_path / "mod.py"
    mod.write_text("X = 1\n")
    at_start = {mod.resolve(): mod.read_bytes()}
    before = artifacts.source_digest([mod], at_start)
    mod.write_text("X = 2\n")                       # edited after the process read it
    assert artifacts.source_digest([mod], at_start) == before
    assert artifacts.source_digest([mod], {}) != before     # a file not read at start: as it is now
    # the project's sources are read when report is first imported
    here = Path(artifacts.__file__).resolve()
    assert SOURCES_AT_START[here] == here.read_bytes()

"""Staleness is decided by content: config values, data files and source files."""

import dataclasses
import os
import time

from report import models
from report.build import make_context, section_key
from report.registry import SECTIONS

from .conftest import make_dataset, write_image, chest_like


def keys(root, build, overrides=()):
    ctx = make_context(str(root), None, overrides, None, build)
    out = {m: models.key(ctx, m) for m in models.names(ctx)}
    done = {}
    for s in SECTIONS:
        done[s.name] = section_key(ctx, s)
    out.update(done)
    return out


def changed(a, b):
    return {k for k in a if a[k] != b[k]}


def test_config_changes_invalidate_exactly_their_dependents(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    base = keys(root, tmp_path / "b")
    # Q2.3 explains the errors with IG: q2 reads attribution.* too
    assert changed(base, keys(root, tmp_path / "b", ["attribution.ig_steps=32"])) == {"q2", "q3", "q4", "q5"}
    assert changed(base, keys(root, tmp_path / "b", ["train.epochs=5"])) == {"main", "main-2", "main-3", "q2", "q3",
                                                                             "q4", "q5"}
    # a fourth seed of the main recipe adds one model and changes the sections that show the seeds (Q2.2, Q3.5,
    # Q4.5), not Q5 (no section's key holds another's: they share maps through report/maps.py); the seeds
    # already trained keep their keys
    more = keys(root, tmp_path / "b", ["train.replicates=4"])
    assert set(more) - set(base) == {"main-4"}
    assert changed(base, {k: more[k] for k in base}) == {"q2", "q3", "q4"}
    # the random-label models are Q3.2's and Q4.2's learned-nothing reference (report/learned.py): q3 and q4 need them
    arms = {f"{kind}-{i}" for kind in ("random", "control") for i in ("1", "2", "3", "4", "5", "all")} | {"control-all-2"}
    assert changed(base, keys(root, tmp_path / "b", ["random_labels.max_epochs=9"])) == arms | {"q3", "q4", "q5"}
    # a sixth seed adds two models; the seeds already trained keep their keys
    more = keys(root, tmp_path / "b", ["random_labels.seeds=6"])
    assert set(more) - set(base) == {"random-6", "control-6"}
    assert changed(base, {k: more[k] for k in base}) == {"q3", "q4", "q5"}
    # without the whole-split pair, the subset arms keep their keys
    fewer = keys(root, tmp_path / "b", ["random_labels.whole_split=false"])
    assert set(base) - set(fewer) == {"random-all", "control-all", "control-all-2"}
    assert changed(fewer, {k: base[k] for k in fewer}) == {"q3", "q4", "q5"}
    # a verdict cut-off recomputes only the sections that read it, never a model
    assert changed(base, keys(root, tmp_path / "b", ["verdicts.randomization_cut=0.4"])) <= {"q3", "q4", "q5"}
    assert changed(base, keys(root, tmp_path / "b", ["data.image_size=64"])) == set(base)


def test_data_changes_by_content_not_timestamp(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    base = keys(root, tmp_path / "b")
    f = next((root / "train" / "NORMAL").iterdir())
    later = time.time() + 100
    os.utime(f, (later, later))
    assert changed(base, keys(root, tmp_path / "b")) == set()
    write_image(root / "train" / "NORMAL" / "IM-9999-0001.jpeg",
                chest_like(__import__("numpy").random.default_rng(9), 48, False))
    assert changed(base, keys(root, tmp_path / "b")) == set(base)


def test_source_change_invalidates_the_section(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    ctx = make_context(str(root), None, (), None, tmp_path / "b")
    src = tmp_path / "module.py"
    src.write_text("x = 1\n")
    section = dataclasses.replace(SECTIONS[0], sources=(src,))
    k1 = section_key(ctx, section)
    os.utime(src, (time.time() + 50, time.time() + 50))
    assert section_key(ctx, section) == k1
    src.write_text("x = 2\n")
    assert section_key(ctx, section) != k1


def test_the_config_schema_is_read_by_value_not_by_source(tmp_path, monkeypatch):
    # catches: xaikit/config.py's source back in the model keys (declaring a new key there would retrain
    # every cached model, hours on the slow machine) while its values still key the models
    from pathlib import Path

    from report import artifacts
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    base = keys(root, tmp_path / "b")
    config_py = Path(models.__file__).resolve().parents[1] / "xaikit" / "config.py"
    real = artifacts.source_digest

    def edited(paths):     # as if a key had been declared in the schema
        return real([p for p in paths if Path(p).resolve() != config_py]) + ("+edit" if config_py in
                                                                             {Path(p).resolve() for p in paths} else "")
    monkeypatch.setattr(artifacts, "source_digest", edited)
    after = keys(root, tmp_path / "b")
    assert {k for k in changed(base, after) if not k.startswith("q")} == set()
    assert changed(base, keys(root, tmp_path / "b", ["train.learning_rate=0.002"])) >= {"main", "main-2", "main-3"}

import math

import pytest

from report.preflight import SCHEMA_FILE, read_config, schema
from xaikit.config import Key, load_config, parse_override, schema_of
from xaikit.errors import ConfigError

from .conftest import study_toml

TEXT = study_toml()


def test_default_config_has_every_key():
    cfg = load_config(TEXT)
    assert set(cfg.values) == set(schema_of(TEXT))
    assert cfg["data.image_size"] == 128


def test_override_and_profile():
    cfg = load_config(TEXT, overrides=["train.epochs=3", "attribution.gradcam_layer=conv_block2"],
                      profile="quick")
    assert cfg["train.epochs"] == 3
    assert cfg["attribution.gradcam_layer"] == "conv_block2"
    assert cfg["data.image_size"] == 64 and cfg.profile == "quick"


def test_digest_depends_only_on_chosen_keys():
    a = load_config(TEXT)
    b = load_config(TEXT, overrides=["attribution.ig_steps=32"])
    assert a.digest(("train.",)) == b.digest(("train.",))
    assert a.digest(("attribution.",)) != b.digest(("attribution.",))


@pytest.mark.parametrize("override, fragment", [
    ("train.epochs=ten", "expects int"),
    ("train.epochs=1.5", "expects int"),
    ("train.nonsense=1", "unknown config key"),
    ("train.class_weights=heavy", "expects one of"),
    ("data.val_fraction=0.9", "(0, 0.5)"),
    ("verdicts.dice_target=1.5", "'verdicts.dice_target' expects a value in [0, 1] (xaikit.toml), got 1.5"),
    ("verdicts.random_auc_band=0.6", "expects a value in [0, 0.5]"),
    ("verdicts.target_auc=0.4", "expects a value in [0.5, 1]"),
    ("verdicts.randomization_cut=1.0", "expects a value in (0, 1)"),
    ("data.image_size=16", "expects a value >= 32"),
    ("random_labels.seeds=1", "expects a value >= 2"),
    ("sanity.cascade_draws=1", "expects a value >= 2"),
    ("train.replicates=0", "expects a value >= 1"),
    ("sanity.primary_metric=pearson", "expects one of ('spearman_abs', 'spearman_signed', 'ssim', 'hog')"),
    ("verdicts.performance_bootstrap=10", "expects a value >= 100"),
    ("attribution.road_steps=0", "'attribution.road_steps' expects a value >= 1"),
    ("verdicts.family_min_train=2.5", "expects int"),
    ("noequals", "section.key=value"),
])
def test_bad_values_are_named(override, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        load_config(TEXT, overrides=[override])
    assert fragment in str(info.value)


def test_unknown_key_in_file_and_bad_toml():
    with pytest.raises(ConfigError, match="unknown config key 'data.colour'"):    # judged by the shipped schema
        load_config(TEXT.replace("[data]", "[data]\ncolour = 1"), schema=schema_of(TEXT))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("[data\n")
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config(TEXT, profile="turbo")


def test_parse_override_literals():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=word") == ("a.b", "word")


# Every range and choice the code checked before the file became the schema (issue #30 item 4): key -> a value
# just outside, a value just inside. Catches a domain dropped from a comment or mistyped in xaikit.toml.
FORMER_DOMAINS = {
    "attribution.road_steps": (0, 1), "attribution.comparison_cells": (1, 2),
    "attribution.shortcut_blur_sigma": (0.09, 0.1), "attribution.errors_per_class": (0, 1),
    "attribution.errors_figure_per_class": (0, 1), "verdicts.dice_target": (1.01, 1.0),
    "verdicts.saturation_span": (-0.01, 0.0), "verdicts.target_auc": (0.49, 0.5), "verdicts.target_accuracy": (1.01, 1.0),
    "verdicts.target_sensitivity": (-0.01, 0.0), "verdicts.target_specificity": (1.01, 1.0),
    "verdicts.performance_bootstrap": (99, 100), "verdicts.family_min_train": (0, 1),
    "verdicts.random_auc_band": (0.51, 0.5), "verdicts.control_fit": (1.01, 1.0), "verdicts.gate_effect": (1.01, 1.0),
    "verdicts.min_errors": (1, 2), "data.val_fraction": (0.5, 0.49), "random_labels.seeds": (1, 2),
    "verdicts.randomization_cut": (0.0, 0.01), "sanity.cascade_draws": (1, 2), "train.replicates": (0, 1),
    "data.image_size": (31, 32), "train.class_weights": ('"equal"', '"none"'),
    "attribution.ig_baseline": ('"grey"', '"train_mean"'), "sanity.primary_metric": ('"pearson"', '"hog"'),
}


@pytest.mark.parametrize("key, outside, inside", [(k, *v) for k, v in FORMER_DOMAINS.items()])
def test_every_former_code_range_is_in_the_file(key, outside, inside):
    with pytest.raises(ConfigError, match=f"config key '{key}' expects"):
        load_config(TEXT, overrides=[f"{key}={outside}"])
    load_config(TEXT, overrides=[f"{key}={inside}"])


def test_the_documented_file_is_the_schema(tmp_path):
    # catches: a key typed in code that the file does not document (or the reverse), a [run] key checked
    # against another list than the file's, or a user's config file judged by its own comments
    keys = schema()
    assert keys["run.threads"] == Key("run.threads", int, 1, keys["run.threads"].doc, low=1, high_open=True)
    assert keys["run.engine"].choices == ("ray", "local") and keys["run.retries"].low == 0
    assert keys["data.val_fraction"].low_open and keys["data.val_fraction"].high == 0.5
    assert keys["train.epochs"].kind is int and keys["train.learning_rate"].kind is float
    assert keys["data.use_kaggle_val"].kind is bool and keys["attribution.gradcam_layer"].high == math.inf
    cfg = read_config(None)
    assert set(cfg.values) == set(keys) and all(cfg[k] == key.default for k, key in keys.items())
    bare = SCHEMA_FILE.read_text().replace("# [1, ∞) Q4.4", "# Q4.4")   # a user's copy without the domains
    mine = tmp_path / "mine.toml"
    mine.write_text(bare)
    with pytest.raises(ConfigError, match="'attribution.road_steps' expects a value >= 1"):
        read_config(str(mine), ["attribution.road_steps=0"])


@pytest.mark.parametrize("comment, fields", [
    ("# [1, ∞) steps", dict(low=1, high=math.inf, high_open=True, doc="steps")),
    ("# (0, 0.5) share", dict(low=0, high=0.5, low_open=True, high_open=True, doc="share")),
    ("# [-inf, 2] x", dict(high=2, doc="x")),
    ('# {"a", "b"} pick one', dict(choices=("a", "b"), doc="pick one")),
    ("# no domain [1, 2]", dict(doc="no domain [1, 2]")),
])
def test_a_comment_opens_with_its_domain(comment, fields):
    # catches: an interval read with the wrong ends or openness, a set misparsed, a bracket inside the prose taken
    value = '"a"' if "{" in comment else "1"
    key = schema_of(f"[s]\nk = {value}   {comment}\n")["s.k"]
    for f, v in fields.items():
        assert getattr(key, f) == v, f
    assert schema_of('[s]\nk = "x # y"  # [1, 2] n\n')["s.k"].low == 1     # a "#" inside a string is not a comment


def test_a_domain_check_can_fail_at_both_ends():
    # catches: an open end treated as closed, or the check skipped for floats given as ints
    key = schema_of("[s]\nk = 0.25   # (0, 0.5]\n")["s.k"]
    assert key.check(0.5) == 0.5 and key.check(0.01) == 0.01
    assert type(schema_of("[s]\nk = 0.5   # (0, 1]\n")["s.k"].check(1)) is float
    for bad in (0, 0.0, 0.51, -1):
        with pytest.raises(ConfigError, match=r"expects a value in \(0, 0.5\]"):
            key.check(bad)
    with pytest.raises(ConfigError, match="expects float, got str"):
        key.check("0.3")
    with pytest.raises(ConfigError, match="empty"):
        schema_of("[s]\nk = 1   # [2, 1]\n")


def test_a_keys_bounds_read_as_written_and_a_closed_end_is_inside():
    # catches: an end's openness defaulting to open, a bound printed with the wrong sign or end
    assert Key("s.k", int, 1, high=2).check(2) == 2 and Key("s.k", int, 1, low=-3).check(-3) == -3
    assert Key("s.k", int, 1).bounds() == "" and Key("s.k", int, 1, low=1).bounds() == ">= 1"
    assert Key("s.k", int, 1, high=2).bounds() == "<= 2" and Key("s.k", int, 1, low=-2).bounds() == ">= -2"
    assert Key("s.k", float, 0.5, low=0, high=1, low_open=True).bounds() == "in (0, 1]"
    assert Key("s.k", float, 0.5, high=1, high_open=True).bounds() == "< 1"
    with pytest.raises(ConfigError, match=r"expects a value <= 2 \(xaikit.toml\), got 3"):
        Key("s.k", int, 1, high=2).check(3)


def test_a_bad_domain_is_named_with_its_text():
    # catches: an error that quotes the wrong part of the comment
    with pytest.raises(ConfigError, match=r"the domain of 's.k' is empty \(\[2, 1\]\)"):
        schema_of("[s]\nk = 1   # [2, 1]\n")
    with pytest.raises(ConfigError, match=r"the choices of 's.k' are not TOML values \(\{a, b\}\)"):
        schema_of('[s]\nk = "a"   # {a, b}\n')
    assert schema_of("[s]\nk = 1   # [1, 1] one point\n")["s.k"].check(1) == 1    # a one-point domain is not empty
    # a table that is not a [section] (a profile) ends the section before it: its keys are not the section's
    assert set(schema_of("[s]\nk = 1\n[profile.quick]\nz = 2\n")) == {"s.k"}


def test_config_values_are_frozen_and_read_by_section():
    # catches: a Config or Key that can be changed after it was checked, a section() that misreads its prefix,
    # or a digest of another length (every cache key holds it)
    import dataclasses
    cfg = load_config(TEXT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.profile = "quick"
    with pytest.raises(dataclasses.FrozenInstanceError):
        schema_of(TEXT)["data.seed"].low = 0
    assert cfg.section("data")["image_size"] == 128 and "seed" in cfg.section("data")
    assert len(cfg.digest()) == 16 and cfg.digest(("data.",)) != cfg.digest(("train.",))


@pytest.mark.parametrize("override, ok", [
    ("model.architecture=examples.mine:build", True), ("model.architecture=batchnorm", True),
    ("model.architecture=examples.mine", False), ("model.architecture=a-b:build", False),
    ("model.path=elsewhere/m.keras", True), ("model.path=m.h5", False),
])
def test_model_architecture_and_path(override, ok):
    # catches: a builder spec without its function accepted, or a valid one / a .keras path refused
    if ok:
        load_config(TEXT, overrides=[override])
    else:
        with pytest.raises(ConfigError, match=override.split("=")[0]):
            load_config(TEXT, overrides=[override])

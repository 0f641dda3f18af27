import pytest

from xaikit.config import SCHEMA, load_config, parse_override
from xaikit.errors import ConfigError

from .conftest import study_toml

TEXT = study_toml()


def test_default_config_has_every_key():
    cfg = load_config(TEXT)
    assert set(cfg.values) == set(SCHEMA)
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
    ("verdicts.dice_target=1.5", "'verdicts.dice_target' expects a value in [0.0, 1.0] (a Dice coefficient), got 1.5"),
    ("verdicts.random_auc_band=0.6", "expects a value in [0.0, 0.5]"),
    ("verdicts.target_auc=0.4", "expects a value in [0.5, 1.0]"),
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
    with pytest.raises(ConfigError, match="unknown config key 'data.colour'"):
        load_config(TEXT.replace("[data]", "[data]\ncolour = 1"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("[data\n")
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config(TEXT, profile="turbo")


def test_parse_override_literals():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=word") == ("a.b", "word")

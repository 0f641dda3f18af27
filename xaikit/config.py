"""Configuration: one TOML file with typed keys, command-line overrides and profiles.

The schema below is the single list of valid keys; an unknown key or a wrong type raises
:class:`ConfigError` naming the key, the expected type and the value found.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .errors import ConfigError

SCHEMA: Mapping[str, type] = MappingProxyType({
    "data.image_size": int,
    "data.val_fraction": float,
    "data.seed": int,
    "data.use_kaggle_val": bool,
    "data.max_per_class": int,
    "model.architecture": str,
    "model.path": str,
    "train.batch_size": int,
    "train.epochs": int,
    "train.learning_rate": float,
    "train.final_learning_rate": float,
    "train.warmup_epochs": int,
    "train.dropout": float,
    "train.label_smoothing": float,
    "train.class_weights": str,
    "train.seed": int,
    "train.augment": bool,
    "train.replicates": int,
    "augment.rotation_deg": float,
    "augment.zoom": float,
    "augment.shift": float,
    "augment.gamma": float,
    "augment.blur_mix": float,
    "augment.blur_sigma": float,
    "random_labels.subset_size": int,
    "random_labels.target_accuracy": float,
    "random_labels.max_epochs": int,
    "random_labels.permutation_seed": int,
    "random_labels.train_seed": int,
    "random_labels.control_seed": int,
    "random_labels.learning_rate": float,
    "random_labels.seeds": int,
    "random_labels.whole_split": bool,
    "sanity.images_per_class": int,
    "sanity.primary_metric": str,
    "sanity.bootstrap": int,
    "sanity.seed": int,
    "sanity.cascade_images_per_class": int,
    "sanity.cascade_draws": int,
    "attribution.samples_per_class": int,
    "attribution.eval_per_class": int,
    "attribution.ig_steps": int,
    "attribution.ig_batch_size": int,
    "attribution.ig_baseline": str,
    "attribution.ig_tolerance": float,
    "attribution.ig_max_steps": int,
    "attribution.noise_draws": int,
    "attribution.blur_sigma": float,
    "attribution.seed": int,
    "attribution.gradcam_layer": str,
    "attribution.gradcam_early_layer": str,
    "attribution.faithfulness_steps": int,
    "attribution.faithfulness_cells": int,
    "attribution.road_steps": int,
    "attribution.errors_per_class": int,
    "attribution.errors_figure_per_class": int,
    "attribution.bootstrap": int,
    "attribution.comparison_cells": int,
    "attribution.shortcut_blur_sigma": float,
    "verdicts.lung_margin": float,
    "verdicts.border_frac": float,
    "verdicts.consistency_high": float,
    "verdicts.consistency_moderate": float,
    "verdicts.agree": float,
    "verdicts.baseline_sensitive": float,
    "verdicts.dice_target": float,
    "verdicts.saturation_span": float,
    "verdicts.target_auc": float,
    "verdicts.target_accuracy": float,
    "verdicts.target_sensitivity": float,
    "verdicts.target_specificity": float,
    "verdicts.performance_bootstrap": int,
    "verdicts.family_min_train": int,
    "verdicts.random_auc_band": float,
    "verdicts.control_fit": float,
    "verdicts.alpha": float,
    "verdicts.randomization_cut": float,
    "verdicts.gate_effect": float,
    "verdicts.min_errors": int,
})

_CHOICES = {"train.class_weights": ("balanced", "none"),
            "attribution.ig_baseline": ("black", "white", "blurred", "noise", "train_mean"),
            "sanity.primary_metric": ("spearman_abs", "spearman_signed", "ssim", "hog")}

# Ranges of the cut-offs and settings behind verdicts: key -> (low, high, reason), both ends
# inclusive (None = unbounded); a value outside raises ConfigError naming the range and the value.
_RANGES = {
    "attribution.road_steps": (1, None, "ROAD's fraction grid needs at least one step"),
    "attribution.comparison_cells": (2, None, "a rank correlation of pooled maps needs at least 2 x 2 cells"),
    "attribution.shortcut_blur_sigma": (0.1, None, "a Gaussian blur of at least a tenth of a pixel"),
    "attribution.errors_per_class": (1, None, "Q2.3 explains at least one error per class"),
    "attribution.errors_figure_per_class": (1, None, "Q2.3's figure shows at least one error per class"),
    "verdicts.dice_target": (0.0, 1.0, "a Dice coefficient"),
    "verdicts.saturation_span": (0.0, 1.0, "a share of the probability scale"),
    "verdicts.target_auc": (0.5, 1.0, "an AUC floor above chance"),
    "verdicts.target_accuracy": (0.0, 1.0, "a proportion"),
    "verdicts.target_sensitivity": (0.0, 1.0, "a proportion"),
    "verdicts.target_specificity": (0.0, 1.0, "a proportion"),
    "verdicts.performance_bootstrap": (100, None, "a percentile interval needs at least 100 draws"),
    "verdicts.family_min_train": (1, None, "a count of training files"),
    "verdicts.random_auc_band": (0.0, 0.5, "a half-width around the chance AUC 0.5"),
    "verdicts.control_fit": (0.0, 1.0, "a training accuracy"),
    "verdicts.gate_effect": (0.0, 1.0, "a difference of two similarities"),
    "verdicts.min_errors": (2, None, "an interval over errors needs at least two"),
}


def _check_range(key: str, value: Any) -> None:
    low, high, why = _RANGES[key]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"config key {key!r} expects a value {bounds} ({why}), got {value!r}")


@dataclass(frozen=True)
class Config:
    """Validated, flat configuration (``"section.key" -> value``)."""

    values: Mapping[str, Any]
    profile: str = "full"

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            raise ConfigError(f"unknown config key {key!r}; expected one of {sorted(self.values)}")
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        prefix = name + "."
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}

    def digest(self, prefixes: Iterable[str] = ("",), exclude: Iterable[str] = ()) -> str:
        """Content hash of the keys that start with any of ``prefixes``, except ``exclude``."""
        exclude = set(exclude)
        chosen = {k: v for k, v in sorted(self.values.items())
                  if any(k.startswith(p) for p in prefixes) and k not in exclude}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


def _is_builder_spec(text: str) -> bool:
    """``package.module:function`` (dotted identifiers on both sides of one colon)."""
    module, sep, fn = text.partition(":")
    return bool(sep) and all(part.isidentifier() for part in module.split(".")) and fn.isidentifier()


def _coerce(key: str, value: Any) -> Any:
    if key not in SCHEMA:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(SCHEMA)}")
    expected = SCHEMA[key]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise ConfigError(f"config key {key!r} expects {expected.__name__}, got "
                          f"{type(value).__name__} {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"config key {key!r} expects one of {_CHOICES[key]}, got {value!r}")
    return value


def _flatten(doc: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, dict]]:
    flat: dict[str, Any] = {}
    profiles: dict[str, dict] = {}
    for section, table in doc.items():
        if section == "profile":
            profiles = {name: dict(p) for name, p in table.items()}
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: expected a [section] table at {section!r}, got {table!r}")
        for key, value in table.items():
            flat[f"{section}.{key}"] = value
    return flat, profiles


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.key=value`` where value is a TOML literal (bare words are strings)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(text: str, *, source: str = "xaikit.toml", overrides: Iterable[str] = (),
                profile: str | None = None) -> Config:
    """Parse TOML ``text``, apply a profile and ``key=value`` overrides, validate every key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    flat, profiles = _flatten(doc, source)
    missing = sorted(set(SCHEMA) - set(flat))
    if missing:
        raise ConfigError(f"{source}: missing keys {missing}")
    values = {k: _coerce(k, v) for k, v in flat.items()}
    if profile and profile != "full":
        if profile not in profiles:
            raise ConfigError(f"{source}: unknown profile {profile!r}; expected one of "
                              f"{sorted(profiles) + ['full']}")
        values.update({k: _coerce(k, v) for k, v in profiles[profile].items()})
    for item in overrides:
        key, value = parse_override(item)
        values[key] = _coerce(key, value)
    for key in _RANGES:
        _check_range(key, values[key])
    if not 0.0 < values["data.val_fraction"] < 0.5:
        raise ConfigError(f"data.val_fraction expects a value in (0, 0.5), got {values['data.val_fraction']}")
    if values["random_labels.seeds"] < 2:
        raise ConfigError(f"random_labels.seeds expects >= 2 (the control ceiling compares two "
                          f"control seeds), got {values['random_labels.seeds']}")
    if not 0.0 < values["verdicts.randomization_cut"] < 1.0:
        raise ConfigError(f"verdicts.randomization_cut expects a value in (0, 1), got "
                          f"{values['verdicts.randomization_cut']}")
    if values["sanity.cascade_draws"] < 2:
        raise ConfigError(f"sanity.cascade_draws expects >= 2 (the random-vs-random reference compares "
                          f"two draws), got {values['sanity.cascade_draws']}")
    if values["train.replicates"] < 1:
        raise ConfigError(f"train.replicates expects >= 1 (the main model is replicate 1), "
                          f"got {values['train.replicates']}")
    arch = values["model.architecture"]
    if arch not in ("baseline", "batchnorm") and not _is_builder_spec(arch):
        raise ConfigError(f"model.architecture expects 'baseline', 'batchnorm' or 'module:function' (a builder "
                          f"build(image_size, channels, *, seed, dropout) -> keras.Model), got {arch!r}")
    if values["model.path"] and not values["model.path"].endswith(".keras"):
        raise ConfigError(f"model.path expects '' (train the model) or a .keras file, got {values['model.path']!r}")
    if values["data.image_size"] < 32:
        raise ConfigError(f"data.image_size expects >= 32, got {values['data.image_size']}")
    return Config(MappingProxyType(values), profile or "full")

"""Configuration: one TOML file with typed keys, command-line overrides and profiles.

Each key is written once, in the documented ``xaikit.toml``: its value there is the default and gives
its type (int, float, bool or str), and its comment may open with its domain, an interval such as
``[1, ∞)`` or ``(0, 0.5)`` or a set such as ``{"ray", "local"}``. :func:`schema_of` reads that file's
text into :class:`Key` values; :func:`load_config` checks a config against them: an unknown key, a
wrong type or a value outside the domain raises :class:`ConfigError` naming the key, what it expects
and the value found.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .errors import ConfigError

TYPES = {bool: "bool", int: "int", float: "float", str: "str"}
_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_]+)\s*\]\s*(#.*)?$")
_OTHER_HEADER = re.compile(r"^\s*\[")
_KEY = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_INTERVAL = re.compile(rf"^([\[(])\s*(-∞|-inf|{_NUMBER})\s*,\s*(∞|inf|{_NUMBER})\s*([\])])")
_SET = re.compile(r"^\{([^}]*)\}")


@dataclass(frozen=True)
class Key:
    """One documented config key: its type, default, domain (interval or choices) and comment."""

    name: str
    kind: type
    default: Any
    doc: str = ""
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()

    def bounds(self) -> str:
        """The interval as a reader expects it: ">= 1", "> 0", "in [0, 1]", "in (0, 0.5)"; "" if none."""
        if self.low == -math.inf and self.high == math.inf:
            return ""
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {_show(self.low)}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {_show(self.high)}"
        return (f"in {'(' if self.low_open else '['}{_show(self.low)}, {_show(self.high)}"
                f"{')' if self.high_open else ']'}")

    def check(self, value: Any) -> Any:
        """``value`` as this key's type (an int where a float is expected becomes a float), or ConfigError."""
        if self.kind is float and type(value) is int:
            value = float(value)
        if type(value) is not self.kind:
            raise ConfigError(f"config key {self.name!r} expects {TYPES[self.kind]}, got "
                              f"{type(value).__name__} {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"config key {self.name!r} expects one of {self.choices}, got {value!r}")
        if self.kind in (int, float):
            below = value < self.low or (self.low_open and value == self.low)
            above = value > self.high or (self.high_open and value == self.high)
            if below or above:
                raise ConfigError(f"config key {self.name!r} expects a value {self.bounds()} (xaikit.toml), "
                                  f"got {value!r}")
        return value


def _show(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _comment(line: str) -> str | None:
    """The text after the ``#`` that opens a line's comment (outside quoted strings), or None."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[i + 1:].strip()
    return None


def _domain(name: str, comment: str) -> dict:
    """The :class:`Key` fields a comment's opening interval or set gives, and the rest as its doc."""
    m = _INTERVAL.match(comment)
    if m:
        lo, hi = (float(v.replace("∞", "inf")) for v in m.group(2, 3))
        if lo > hi:
            raise ConfigError(f"xaikit.toml: the domain of {name!r} is empty ({m.group(0)})")
        return dict(low=lo, high=hi, low_open=m.group(1) == "(", high_open=m.group(4) == ")",
                    doc=comment[m.end():].strip())
    m = _SET.match(comment)
    if m:
        try:
            choices = tuple(tomllib.loads(f"v = [{m.group(1)}]")["v"])
        except tomllib.TOMLDecodeError:
            raise ConfigError(f"xaikit.toml: the choices of {name!r} are not TOML values ({m.group(0)})") from None
        return dict(choices=choices, doc=comment[m.end():].strip())
    return dict(doc=comment)


def schema_of(text: str, source: str = "xaikit.toml") -> dict[str, Key]:
    """The keys of a documented config file's tables (not its profiles): ``"section.key" -> Key``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    out: dict[str, Key] = {}
    section = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header or _OTHER_HEADER.match(line):
            section = header.group(1) if header else None
            continue
        key = _KEY.match(line)
        if section is None or key is None or not isinstance(doc.get(section), dict):
            continue
        name, value = f"{section}.{key.group(1)}", doc[section].get(key.group(1))
        if type(value) not in TYPES:
            raise ConfigError(f"{source}: {name} expects a bool, int, float or str default, got {value!r}")
        out[name] = Key(name, type(value), value, **_domain(name, _comment(line) or ""))
    return out


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


def _coerce(schema: Mapping[str, Key], key: str, value: Any) -> Any:
    if key not in schema:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(schema)}")
    return schema[key].check(value)


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
                profile: str | None = None, schema: Mapping[str, Key] | None = None) -> Config:
    """Parse TOML ``text``, apply a profile and ``key=value`` overrides, check every key against
    ``schema`` (default: the keys documented in ``text`` itself, :func:`schema_of`)."""
    schema = schema_of(text, source) if schema is None else schema
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    flat, profiles = _flatten(doc, source)
    missing = sorted(set(schema) - set(flat))
    if missing:
        raise ConfigError(f"{source}: missing keys {missing}")
    values = {k: _coerce(schema, k, v) for k, v in flat.items()}
    if profile and profile != "full":
        if profile not in profiles:
            raise ConfigError(f"{source}: unknown profile {profile!r}; expected one of "
                              f"{sorted(profiles) + ['full']}")
        values.update({k: _coerce(schema, k, v) for k, v in profiles[profile].items()})
    for item in overrides:
        key, value = parse_override(item)
        values[key] = _coerce(schema, key, value)
    arch = values.get("model.architecture", "baseline")
    if arch not in ("baseline", "batchnorm") and not _is_builder_spec(arch):
        raise ConfigError(f"model.architecture expects 'baseline', 'batchnorm' or 'module:function' (a builder "
                          f"build(image_size, channels, *, seed, dropout) -> keras.Model), got {arch!r}")
    if values.get("model.path") and not values["model.path"].endswith(".keras"):
        raise ConfigError(f"model.path expects '' (train the model) or a .keras file, got {values['model.path']!r}")
    return Config(MappingProxyType(values), profile or "full")

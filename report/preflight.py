"""Checks of the command's inputs that need no TensorFlow: the config and the data folder.

The CLI runs them before importing anything heavy, so a mistyped ``--data`` or ``--set``
answers with one line in well under a second and leaves ``build/`` as it was.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from types import MappingProxyType

from xaikit.config import Config, load_config, parse_override
from xaikit.data import check_layout
from xaikit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "data/chest_xray"
KAGGLEHUB = Path.home() / ".cache" / "kagglehub" / "datasets" / "paultimothymooney" / "chest-xray-pneumonia"


DATASET_FILE = "dataset.json"      # in the build folder: the dataset the last build read


def remembered(build: str | Path) -> dict | None:
    """{"path", "digest"} of the dataset the last build in ``build`` read, or None."""
    try:
        found = json.loads((Path(build) / DATASET_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("path"), str) else None


def data_choice(cli_value: str | None, build: str | Path = ROOT / "build") -> tuple[str, str]:
    """(path, where it came from): --data, else $XAIKIT_DATA, else the dataset the last build in
    ``build`` read (``build/dataset.json``, while that dataset folder exists), else ./data/chest_xray,
    else a kagglehub download if present."""
    if cli_value:
        return cli_value, "--data"
    if os.environ.get("XAIKIT_DATA"):
        return os.environ["XAIKIT_DATA"], "XAIKIT_DATA"
    last = remembered(build)
    if last is not None and Path(last["path"]).is_dir():
        return last["path"], "remembered"
    if not (ROOT / DEFAULT_DATA).exists():
        cached = sorted(KAGGLEHUB.glob("versions/*/chest_xray"))
        if cached:
            return str(cached[-1]), "kagglehub"
    return str(ROOT / DEFAULT_DATA), "default"


def data_path(cli_value: str | None, build: str | Path = ROOT / "build") -> str:
    return data_choice(cli_value, build)[0]


# [run]: how the build runs, not what it computes; no stage key reads these keys, which is why they
# are read here and kept out of xaikit/config.py's SCHEMA (whose values every key digests).
# key -> (type, allowed values or None, default when a config file has no [run] table)
RUN_KEYS = {"run.engine": (str, ("ray", "local"), "ray"),
            "run.threads": (int, None, 1),
            "run.retries": (int, None, 2)}
_RUN_HEADER = re.compile(r"^\s*\[\s*run\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


def split_run(text: str, source: str) -> tuple[str, dict]:
    """(the TOML text without its ``[run]`` table, that table's values) for :func:`load_config`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    if "run" not in doc:
        return text, {}
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        if _ANY_HEADER.match(line):
            inside = bool(_RUN_HEADER.match(line))
        if not inside:
            kept.append(line)
    rest = "".join(kept)
    expected = {k: v for k, v in doc.items() if k != "run"}
    if not isinstance(doc["run"], dict) or tomllib.loads(rest) != expected:
        raise ConfigError(f"{source}: expected the run settings as one [run] table of plain keys, got {doc['run']!r}")
    return rest, {f"run.{k}": v for k, v in doc["run"].items()}


def _run_value(key: str, value):
    if key not in RUN_KEYS:
        raise ConfigError(f"unknown config key {key!r}; valid [run] keys: {', '.join(RUN_KEYS)}")
    kind, choices, _ = RUN_KEYS[key]
    if type(value) is not kind:
        raise ConfigError(f"config key {key!r} expects {kind.__name__}, got {type(value).__name__} {value!r}")
    if choices and value not in choices:
        raise ConfigError(f"config key {key!r} expects one of {choices}, got {value!r}")
    if key == "run.threads" and value < 1:
        raise ConfigError(f"config key 'run.threads' expects >= 1 (TensorFlow threads per training task), got {value}")
    if key == "run.retries" and value < 0:
        raise ConfigError(f"config key 'run.retries' expects >= 0 (retries of a failed training task), got {value}")
    return value


def read_config(config: str | None, overrides=(), profile: str | None = None) -> Config:
    """The validated config; the ``[run]`` keys (and ``--set run.KEY=...``) are checked here and
    added to it, defaulted when the file has no ``[run]`` table."""
    cfg_path = Path(config) if config else ROOT / "xaikit.toml"
    try:
        text = cfg_path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {cfg_path} could not be read ({exc.strerror}); expected "
                          "a TOML file like xaikit.toml") from None
    text, run = split_run(text, str(cfg_path))
    study = [o for o in overrides if not o.strip().startswith("run.")]
    run.update(parse_override(o) for o in overrides if o.strip().startswith("run."))
    cfg = load_config(text, source=str(cfg_path), overrides=study, profile=profile)
    values = {k: default for k, (_, _, default) in RUN_KEYS.items()}
    values.update({k: _run_value(k, v) for k, v in run.items()})
    return Config(MappingProxyType({**cfg.values, **values}), cfg.profile)


def check_inputs(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None, build: str | Path = ROOT / "build") -> None:
    """Raise ConfigError / DataError when the config or the data folder's layout is wrong."""
    cfg = read_config(config, overrides, profile)
    if cfg["model.path"] and not Path(cfg["model.path"]).expanduser().is_file():
        raise ConfigError(f"model.path {cfg['model.path']!r} not found; expected a .keras file saved with "
                          "model.save()")
    check_layout(data_path(data, build))

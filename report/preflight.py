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

from xaikit.config import Config, load_config, parse_override, schema_of
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


# The documented xaikit.toml shipped with the project is the schema of every config (xaikit.config.schema_of):
# a user's own --config file is checked against it. Its [run] keys say how the build runs, not what it
# computes: no stage key reads them, so they are checked here and kept out of the study's Config values
# that every key digests.
SCHEMA_FILE = ROOT / "xaikit.toml"


def schema() -> dict:
    """``"section.key" -> xaikit.config.Key`` of the shipped, documented xaikit.toml."""
    return schema_of(SCHEMA_FILE.read_text("utf-8"), SCHEMA_FILE.name)


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
    keys = schema()
    run_keys = {k: v for k, v in keys.items() if k.startswith("run.")}
    cfg = load_config(text, source=str(cfg_path), overrides=study, profile=profile,
                      schema={k: v for k, v in keys.items() if k not in run_keys})
    values = {k: key.default for k, key in run_keys.items()}
    for k, v in run.items():
        if k not in run_keys:
            raise ConfigError(f"unknown config key {k!r}; valid [run] keys: {', '.join(run_keys)}")
        values[k] = run_keys[k].check(v)
    return Config(MappingProxyType({**cfg.values, **values}), cfg.profile)


def check_inputs(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None, build: str | Path = ROOT / "build") -> None:
    """Raise ConfigError / DataError when the config or the data folder's layout is wrong."""
    cfg = read_config(config, overrides, profile)
    if cfg["model.path"] and not Path(cfg["model.path"]).expanduser().is_file():
        raise ConfigError(f"model.path {cfg['model.path']!r} not found; expected a .keras file saved with "
                          "model.save()")
    check_layout(data_path(data, build))

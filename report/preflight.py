"""Checks of the command's inputs that need no TensorFlow: the config and the data folder.

The CLI runs them before importing anything heavy, so a mistyped ``--data`` or ``--set``
answers with one line in well under a second and leaves ``build/`` as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from xaikit.config import Config, load_config
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


def read_config(config: str | None, overrides=(), profile: str | None = None) -> Config:
    cfg_path = Path(config) if config else ROOT / "xaikit.toml"
    try:
        text = cfg_path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {cfg_path} could not be read ({exc.strerror}); expected "
                          "a TOML file like xaikit.toml") from None
    return load_config(text, source=str(cfg_path), overrides=overrides, profile=profile)


def check_inputs(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None, build: str | Path = ROOT / "build") -> None:
    """Raise ConfigError / DataError when the config or the data folder's layout is wrong."""
    cfg = read_config(config, overrides, profile)
    if cfg["model.path"] and not Path(cfg["model.path"]).expanduser().is_file():
        raise ConfigError(f"model.path {cfg['model.path']!r} not found; expected a .keras file saved with "
                          "model.save()")
    check_layout(data_path(data, build))

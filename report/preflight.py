"""Checks of the command's inputs that need no TensorFlow: the config and the data folder.

The CLI runs them before importing anything heavy, so a mistyped ``--data`` or ``--set``
answers with one line in well under a second and leaves ``build/`` as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from xaikit.config import Config, load_config
from xaikit.data import check_layout
from xaikit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "data/chest_xray"
KAGGLEHUB = Path.home() / ".cache" / "kagglehub" / "datasets" / "paultimothymooney" / "chest-xray-pneumonia"


def data_path(cli_value: str | None) -> str:
    """--data, else $XAIKIT_DATA, else ./data/chest_xray, else a kagglehub download if present."""
    chosen = cli_value or os.environ.get("XAIKIT_DATA")
    if chosen:
        return chosen
    if not (ROOT / DEFAULT_DATA).exists():
        cached = sorted(KAGGLEHUB.glob("versions/*/chest_xray"))
        if cached:
            return str(cached[-1])
    return str(ROOT / DEFAULT_DATA)


def read_config(config: str | None, overrides=(), profile: str | None = None) -> Config:
    cfg_path = Path(config) if config else ROOT / "xaikit.toml"
    try:
        text = cfg_path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {cfg_path} could not be read ({exc.strerror}); expected "
                          "a TOML file like xaikit.toml") from None
    return load_config(text, source=str(cfg_path), overrides=overrides, profile=profile)


def check_inputs(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None) -> None:
    """Raise ConfigError / DataError when the config or the data folder's layout is wrong."""
    cfg = read_config(config, overrides, profile)
    if cfg["model.path"] and not Path(cfg["model.path"]).expanduser().is_file():
        raise ConfigError(f"model.path {cfg['model.path']!r} not found; expected a .keras file saved with "
                          "model.save()")
    check_layout(data_path(data))

"""What a reader needs to reproduce a build: code version, package versions, data, config,
seeds, device and each stage's time. Collected at render time and stored in numbers.json."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata

from .context import ROOT, Context
from .preflight import read_config

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "tf-keras-vis", "numpy", "weasyprint")
SEED_KEYS = ("data.seed", "train.seed", "random_labels.permutation_seed", "random_labels.train_seed",
             "random_labels.control_seed", "attribution.seed", "sanity.seed")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _device(strategy: str) -> str:
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return f"{'GPU x' + str(len(gpus)) if gpus else 'CPU'} ({platform.processor() or platform.machine()}), strategy {strategy}"


def collect(ctx: Context) -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    defaults = read_config(None).as_dict()
    values = ctx.cfg.as_dict()
    counts: dict[str, int] = {}
    for r in ctx.listing.records:
        key = f"{r.split}/{('NORMAL', 'PNEUMONIA')[r.label]}"
        counts[key] = counts.get(key, 0) + 1
    config_text = repr(sorted(values.items())).encode()
    return {
        "commit": _git("rev-parse", "--short=12", "HEAD") or "unknown",
        "modified": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": versions,
        "dataset": {"root": ctx.listing.root, "manifest": ctx.listing.digest(),
                    "images": len(ctx.listing.records), "counts": counts},
        "config_hash": hashlib.sha256(config_text).hexdigest()[:16],
        "profile": ctx.cfg.profile,
        "non_default": {k: v for k, v in values.items() if defaults.get(k) != v},
        "seeds": {k: values[k] for k in SEED_KEYS if k in values},
        "device": _device(ctx.strategy_name),
        "stages": [{"stage": s, "how": how, "seconds": round(sec, 1)} for s, how, sec in ctx.timings],
    }

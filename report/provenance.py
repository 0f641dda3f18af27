"""What a reader needs to reproduce a build: code version, package versions, data, config,
seeds, device and each stage's time. Collected at render time and stored in numbers.json."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import artifacts
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


def device(strategy: str) -> str | None:
    """The device TensorFlow sees, or None when TensorFlow is not loaded (it is not imported
    just to ask: each section's result records where it ran)."""
    cpu = platform.processor() or platform.machine()
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    gpus = tf.config.list_logical_devices("GPU")
    return f"{'GPU x' + str(len(gpus)) if gpus else 'CPU'} ({cpu}), strategy {strategy}"


def _when(path: Path) -> str | None:
    try:
        return _dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone().strftime("%Y-%m-%d %H:%M %z")
    except OSError:
        return None


def stage_records(ctx: Context, results: dict, model_names=()) -> list[dict]:
    """Per stage (data, each model, each section): whether this build computed or reused it,
    when it was computed and how long that took then (from the stored result, model card or
    data cache; a file's time when an older artifact has no record)."""
    how = {stage: h for stage, h, _ in ctx.timings}
    rows = []
    data = ctx.build / "cache" / f"data-{ctx.data_key}.npz"
    rec = artifacts.read_json(data.with_suffix(".json")) or {}
    rows.append({"stage": "data", "how": how.get("data", "reused"),
                 "computed_at": rec.get("computed_at") or _when(data), "seconds": rec.get("seconds")})
    for name in model_names:
        card_path = ctx.build / "models" / f"{name}.json"
        card = artifacts.read_json(card_path) or {}
        rows.append({"stage": f"model {name}", "how": how.get(f"model {name}", "reused"),
                     "computed_at": card.get("computed_at") or _when(card_path),
                     "seconds": card.get("seconds")})
    for name, res in results.items():
        rows.append({"stage": name, "how": how.get(name, "reused"),
                     "computed_at": res.get("computed_at") or _when(ctx.build / "sections" / name / "result.json"),
                     "seconds": res.get("seconds")})
    for row in rows:
        if row["seconds"] is not None:
            row["seconds"] = round(float(row["seconds"]), 1)
    return rows


def _past_devices(results: dict) -> str:
    seen = sorted({r["device"] for r in results.values() if r.get("device")})
    return (f"no stage ran in this build (TensorFlow not loaded); the stages ran on {'; '.join(seen)}"
            if seen else "no stage ran in this build (TensorFlow not loaded)")


def collect(ctx: Context, results: dict | None = None, model_names=()) -> dict:
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
    stages = stage_records(ctx, results or {}, model_names)
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
        "device": device(ctx.strategy_name) or _past_devices(results or {}),
        "stages": stages,
        "total_seconds": round(sum(r["seconds"] or 0.0 for r in stages), 1),
    }

"""Build context: the validated config, the dataset listing, cached decoded data and models.

Everything cached is keyed by content hashes of what it was made from (data listing, the
config keys it reads, the source of the code that made it); a cache whose key does not
match is rebuilt, never trusted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from xaikit import data as xdata
from xaikit.config import Config
from xaikit.errors import DataError, XaikitError

from . import artifacts

ROOT = Path(__file__).resolve().parent.parent


def lib(*names: str) -> list[Path]:
    """Paths of xaikit modules (for stage keys)."""
    return [ROOT / "xaikit" / f"{n}.py" for n in names]


def log(msg: str) -> None:
    print(f"[xaikit] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Prepared:
    """Decoded images of every split with labels and provenance (uint8, N x S x S)."""

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray          # "train", "val" or "test" as used (val carved from train)
    source_split: np.ndarray   # split folder on disk
    names: np.ndarray          # relpath
    width: np.ndarray
    height: np.ndarray
    failed: tuple[str, ...]

    def idx(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def x(self, split: str) -> np.ndarray:
        return self.images[self.idx(split)]

    def y(self, split: str) -> np.ndarray:
        return self.labels[self.idx(split)]


# The data key's code. xaikit/config.py is not in it (nor, through it, in any model's key): what the
# config says enters every key as values (Config.digest of the keys a stage reads), so declaring a new
# key or reformatting a message there retrains nothing; changing a value still does.
DATA_SOURCES = lib("data") + [Path(__file__)]


def require_decoded(listing: xdata.Listing, attempted, decoded: xdata.Decoded) -> None:
    """Raise DataError when a class of train/ or test/ has no image that could be decoded."""
    for split in xdata.REQUIRED_SPLITS:
        for label, cls in enumerate(xdata.CLASSES):
            tried = [r for r in attempted if r.split == split and r.label == label]
            if tried and not any(r.split == split and r.label == label for r in decoded.records):
                example = next((f for f in decoded.failed if f.startswith(tried[0].relpath + ":")),
                               tried[0].relpath)
                folder = tried[0].relpath.rsplit("/", 1)[0]
                raise DataError(f"{listing.root}/{folder}: none of its {len(tried)} image files could "
                                f"be decoded (e.g. {example}); expected both NORMAL and PNEUMONIA "
                                f"images in {split}/")


def prepare(listing: xdata.Listing, cfg: Config) -> Prepared:
    """Cap (optional), decode and split the listing as configured."""
    recs = list(listing.records)
    cap = cfg["data.max_per_class"]
    if cap > 0:
        rng = np.random.default_rng(cfg["data.seed"])
        kept = []
        for split in xdata.SPLITS:
            for label in (0, 1):
                group = [r for r in recs if r.split == split and r.label == label]
                if len(group) > cap:
                    pick = np.sort(rng.choice(len(group), cap, replace=False))
                    group = [group[i] for i in pick]
                kept.extend(group)
        recs = kept
    decoded = xdata.decode_listing(listing, cfg["data.image_size"], tuple(recs))
    require_decoded(listing, recs, decoded)
    records = decoded.records
    labels = np.array([r.label for r in records], int)
    source = np.array([r.split for r in records], dtype=str)
    split = xdata.assign_splits(source, labels, [r.name for r in records], cfg["data.val_fraction"],
                                cfg["data.seed"], cfg["data.use_kaggle_val"]).split
    for name in ("train", "test"):
        present = set(labels[split == name].tolist())
        if present != {0, 1}:
            raise DataError(f"{listing.root}: after decoding, the {name} split has classes "
                            f"{sorted(present)}; expected both NORMAL and PNEUMONIA images")
    return Prepared(decoded.images, labels, split, source,
                    np.array([r.relpath for r in records]), decoded.width, decoded.height,
                    decoded.failed)


STRATEGIES = ("default", "mirrored", "one-device")


def make_strategy(name: str):
    """None (default: TensorFlow uses a visible GPU by itself), MirroredStrategy over all GPUs,
    or a one-device strategy (the first GPU, else the CPU; used by the tests)."""
    if name not in STRATEGIES:
        raise XaikitError(f"strategy expects one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return None
    import tensorflow as tf
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


@dataclass
class Context:
    cfg: Config
    listing: xdata.Listing
    build: Path
    timings: list = field(default_factory=list)   # (stage, "reused"/"computed", seconds)
    strategy_name: str = "default"                 # default, mirrored or one-device
    model_loader: Callable | None = None           # report.models.get, given by the build
    model_file: tuple | None = None                # (path, (model, contract, sha256)): report.architecture
    _prepared: Prepared | None = None
    _models: dict = field(default_factory=dict)

    @property
    def data_key(self) -> str:
        return artifacts.digest(self.listing.digest(), self.cfg.digest(("data.",)),
                                artifacts.source_digest(DATA_SOURCES))

    def prepared(self) -> Prepared:
        if self._prepared is not None:
            return self._prepared
        path = self.build / "cache" / f"data-{self.data_key}.npz"
        t0 = time.perf_counter()
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    self._prepared = Prepared(
                        z["images"], z["labels"], z["split"], z["source_split"], z["names"],
                        z["width"], z["height"], tuple(z["failed"].tolist()))
                self.timings.append(("data", "reused", time.perf_counter() - t0))
                return self._prepared
            except (OSError, ValueError, KeyError):
                log(f"cache {path.name} unreadable; decoding again")
        log(f"decoding {len(self.listing.records)} images at {self.cfg['data.image_size']} px")
        p = prepare(self.listing, self.cfg)
        for old in (self.build / "cache").glob("data-*.*"):
            old.unlink()
        artifacts.atomic_save_npz(path, images=p.images, labels=p.labels, split=p.split,
                                  source_split=p.source_split, names=p.names, width=p.width,
                                  height=p.height, failed=np.array(p.failed, dtype=str))
        artifacts.atomic_write_json(path.with_suffix(".json"), {    # for the provenance appendix
            "computed_at": artifacts.now(), "seconds": time.perf_counter() - t0})
        skipped = list(self.listing.empty) + list(p.failed)
        artifacts.atomic_write_text(self.build / "skipped.txt",
                                    "".join(f"{s}\n" for s in skipped))
        if skipped:
            log(f"warning: skipped {len(skipped)} unreadable or empty image files under "
                f"{self.listing.root} (list in {self.build / 'skipped.txt'})")
        self._prepared = p
        self.timings.append(("data", "computed", time.perf_counter() - t0))
        return p

    def strategy(self):
        """The tf.distribute strategy for training, or None for TensorFlow's default placement."""
        return make_strategy(self.strategy_name)

    def model(self, name: str):
        """(keras model, model card) for ``main``, ``random-i`` or ``control-i``; trained if stale.

        The loader (``report.models.get``) is passed in by the build, so this module does not
        import ``report.models`` (which imports this one)."""
        if name not in self._models:
            if self.model_loader is None:
                raise RuntimeError("this Context has no model_loader; make it with report.build.make_context")
            self._models[name] = self.model_loader(self, name)
        return self._models[name]

    def save_arrays(self, name: str, **arrays) -> None:
        artifacts.atomic_save_npz(self.build / "attributions" / f"{name}.npz", **arrays)

    def load_arrays(self, name: str) -> dict:
        with np.load(self.build / "attributions" / f"{name}.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

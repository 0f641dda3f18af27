"""Shared fixtures: generated datasets in the Kaggle layout and a small real sample."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("XAIKIT_SHARED_DATA", ROOT.parent / "shared" / "data" / "chest_xray"))


def study_toml() -> str:
    """xaikit.toml as xaikit.config reads it: without the [run] table (how the build runs), which
    report.preflight reads."""
    from report.preflight import split_run
    return split_run((ROOT / "xaikit.toml").read_text(), "xaikit.toml")[0]


def chest_like(rng: np.random.Generator, size: int, sick: bool) -> np.ndarray:
    """A crude chest-like picture: bright body, two dark lungs, hazier lungs when sick."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.75 - 0.2 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    for cx in (0.3, 0.7):
        lung = ((xx - cx) / 0.15) ** 2 + ((yy - 0.5) / 0.28) ** 2 <= 1
        img[lung] = 0.55 if sick else 0.2
    img += rng.normal(0, 0.04, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_image(path: Path, arr: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr, "L")
    if mode != "L":
        im = im.convert(mode)
    im.save(path)


def make_dataset(root: Path, *, per_class: dict | None = None, size: int = 48, seed: int = 0,
                 rgb_every: int = 3) -> Path:
    """Kaggle-layout folder of generated images; every ``rgb_every``-th file is RGB."""
    rng = np.random.default_rng(seed)
    per_class = per_class or {"train": 12, "test": 6}
    for split, n in per_class.items():
        for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
            for i in range(n):
                name = (f"person{i}_bacteria_{i}.jpeg" if label else f"IM-{i:04d}-0001.jpeg")
                s = size + (i % 3) * 8
                write_image(root / split / cls / name, chest_like(rng, s, bool(label)),
                            "RGB" if i % rgb_every == 0 else "L")
    return root


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "chest_xray")


REAL_SAMPLE = {
    ("train", "NORMAL"): 16, ("train", "PNEUMONIA"): 16,
    ("test", "NORMAL"): 8, ("test", "PNEUMONIA"): 8,
}


@pytest.fixture(scope="session")
def real_sample(tmp_path_factory) -> Path:
    """A few dozen real images copied by name (sorted order) from the shared dataset."""
    if not (SHARED / "train" / "NORMAL").is_dir():
        pytest.skip(f"shared dataset not found at {SHARED} (set XAIKIT_SHARED_DATA)")
    dest = tmp_path_factory.mktemp("real") / "chest_xray"
    for (split, cls), n in REAL_SAMPLE.items():
        files = sorted((SHARED / split / cls).iterdir())[:n]
        (dest / split / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, dest / split / cls / f.name)
    return dest

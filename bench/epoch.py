"""Benchmark: seconds per training epoch for candidate architectures and input sizes, in one run.

Prints each candidate's time per epoch on the same images and its ratio to the chosen design
(stem without BatchNorm at 128 px). Uses the decoded dataset cache under build/ when present,
else random images.

    .venv/bin/python bench/epoch.py [--images 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
from keras import layers  # noqa: E402

from xaikit.model import PerImageStandardization, build_cnn  # noqa: E402
from xaikit.pipeline import AugmentParams, make_dataset  # noqa: E402


def plain4(size: int, bn: bool) -> keras.Model:
    inp = keras.Input((size, size, 1))
    x = PerImageStandardization()(inp)
    for f in (32, 64, 128, 256):
        x = layers.Conv2D(f, 3, padding="same", use_bias=not bn)(x)
        if bn:
            x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, activation="softmax")(x))


def stem_bn(size: int) -> keras.Model:
    inp = keras.Input((size, size, 1))
    x = PerImageStandardization()(inp)
    x = layers.Conv2D(32, 5, strides=2, padding="same")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D()(x)
    for f in (64, 128, 256):
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(f, 3, padding="same")(x)))
        if f != 256:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, activation="softmax")(x))


CANDIDATES = {
    "stem, no BN, 128 px (chosen)": (128, lambda s: build_cnn(s, 1, seed=0)),
    "stem, no BN, 96 px": (96, lambda s: build_cnn(s, 1, seed=0)),
    "stem + BN, 128 px": (128, stem_bn),
    "plain 4 blocks, no BN, 128 px": (128, lambda s: plain4(s, False)),
    "plain 4 blocks + BN, 128 px": (128, lambda s: plain4(s, True)),
}


def images(n: int, size: int) -> np.ndarray:
    from PIL import Image
    cache = sorted((Path(__file__).resolve().parent.parent / "build" / "cache").glob("data-*.npz"))
    if cache:
        with np.load(cache[0]) as z:
            src = z["images"][:n]
        return np.stack([np.asarray(Image.fromarray(a).resize((size, size))) for a in src])
    return np.random.default_rng(0).integers(0, 255, (n, size, size), dtype=np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1024)
    args = ap.parse_args()
    y = np.eye(2, dtype=np.float32)[np.arange(args.images) % 2]
    results = {}
    for name, (size, make) in CANDIDATES.items():
        x = images(args.images, size)
        ds = make_dataset(x, y, batch_size=32, training=True, seed=0, augment=AugmentParams())
        model = make(size)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(ds, epochs=1, verbose=0)                 # warm-up: tracing, caches
        t = time.perf_counter()
        model.fit(ds, epochs=2, verbose=0)
        per_epoch = (time.perf_counter() - t) / 2 * 5216 / args.images
        results[name] = (per_epoch, model.count_params())
    ref = results["stem, no BN, 128 px (chosen)"][0]
    print(f"seconds per epoch scaled to 5,216 images (measured on {args.images}), batch 32, with augmentation")
    for name, (sec, params) in results.items():
        print(f"{name:<32} {sec:7.1f} s/epoch  {sec / ref:5.2f}x the chosen design  {params:>8} params")


if __name__ == "__main__":
    main()

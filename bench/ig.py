"""Benchmark: our batched IG vs a per-step loop (one tape per step) vs PAIR saliency's IG.

Same model, images, baseline and steps in one run; prints seconds per image, ratios against
the per-step loop, and completeness gaps. Uses build/models/main.keras when present.

    .venv/bin/python bench/ig.py [--images 8] [--steps 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from xaikit.ig import integrated_gradients, scores  # noqa: E402
from xaikit.model import build_cnn, logits_model  # noqa: E402


def per_step_ig(model, x, baseline, target, steps):
    """keras-io style: one tape per interpolation point (trapezoid weights for a fair gap)."""
    alphas = np.linspace(0, 1, steps + 1, dtype=np.float32)
    w = np.full(steps + 1, 1.0 / steps, np.float32)
    w[[0, -1]] /= 2
    out = np.zeros_like(x)
    for i in range(len(x)):
        total = np.zeros_like(x[i])
        for a, wa in zip(alphas, w):
            p = tf.constant((baseline[i] + a * (x[i] - baseline[i]))[None])
            with tf.GradientTape() as tape:
                tape.watch(p)
                s = model(p, training=False)[:, target[i]]
            total += wa * tape.gradient(s, p).numpy()[0]
        out[i] = (x[i] - baseline[i]) * total
    return out


def pair_ig(model, x, baseline, target, steps):
    import saliency.core as saliency

    def call(images, call_model_args=None, expected_keys=None):
        t = tf.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            tape.watch(t)
            s = model(t, training=False)[:, call_model_args]
        return {saliency.INPUT_OUTPUT_GRADIENTS: tape.gradient(s, t).numpy()}

    ig = saliency.IntegratedGradients()
    return np.stack([ig.GetMask(x[i], call, call_model_args=int(target[i]), x_steps=steps,
                                x_baseline=baseline[i], batch_size=steps) for i in range(len(x))])


def gaps(model, x, b, target, attr):
    delta = scores(model, x, target) - scores(model, b, target)
    return np.abs(attr.reshape(len(x), -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--baseline", choices=("blurred", "black"), default="blurred",
                    help="blurred (the report's main baseline) or black (degenerate for this model, Q3.4)")
    args = ap.parse_args()
    path = Path(__file__).resolve().parent.parent / "build" / "models" / "main.keras"
    if path.exists():
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        where = f"trained model {path}"
    else:
        model = build_cnn(args.size, 1, seed=0)
        where = "untrained model (no build/models/main.keras)"
    logits = logits_model(model)
    size = model.input_shape[1]
    x = np.random.default_rng(0).uniform(size=(args.images, size, size, 1)).astype(np.float32)
    data = Path(__file__).resolve().parent.parent / "build" / "attributions" / "ig_main.npz"
    if data.exists():
        with np.load(data) as z:
            x = z["inputs"][: args.images]
            where += ", real test images"
    if args.baseline == "black":
        b = np.zeros_like(x)
    else:
        from xaikit.baselines import blurred
        b = blurred(x, 8.0 * size / 128)
    target = np.argmax(logits.predict(x, verbose=0), 1)
    integrated_gradients(logits, x[:1], b[:1], target[:1], steps=4)   # warm up tracing
    runs = {}
    t = time.perf_counter()
    ours = integrated_gradients(logits, x, b, target, steps=args.steps, batch_size=args.steps + 1)
    runs["batched (xaikit)"] = (time.perf_counter() - t, ours.attributions)
    t = time.perf_counter()
    loop = per_step_ig(logits, x, b, target, args.steps)
    runs["per-step loop"] = (time.perf_counter() - t, loop)
    try:
        t = time.perf_counter()
        pair = pair_ig(logits, x, b, target, args.steps)
        runs["PAIR saliency"] = (time.perf_counter() - t, pair)
    except ImportError:
        print("PAIR saliency not installed: skipped")
    ref = runs["per-step loop"][0]
    print(f"{where}; {args.images} images at {size} px, {args.steps} steps, {args.baseline} baseline")
    print(f"{'method':<18} {'s/image':>8} {'speed-up vs loop':>17} {'median gap':>11} {'max gap':>9} {'corr w/ ours':>12}")
    for name, (sec, attr) in runs.items():
        g = gaps(logits, x, b, target, attr)
        corr = np.corrcoef(attr.ravel(), ours.attributions.ravel())[0, 1]
        print(f"{name:<18} {sec / len(x):8.3f} {ref / sec:17.1f} {np.median(g):11.4%} {g.max():9.3%} {corr:12.4f}")


if __name__ == "__main__":
    main()

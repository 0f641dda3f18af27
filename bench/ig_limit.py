"""Benchmark: Integrated Gradients against its own limit, old vs new in one run (issue 23, item 8).

The limit is the model's forward+backward time for each image's path points (steps + 1) as one
compiled batch, the points built beforehand (over the same images as IG). Measured on the
project's CNN (``build_cnn`` at 128 px, untrained weights: the time does not depend on them)
behind the logit-margin model the report explains, with the report's blurred baseline, steps
and batch size. Prints, in one run:
  - the limit per image;
  - old (the implementation before this change, copied below) and new IG: seconds for 1 and for
    N images per call, the per-image slope and the per-call overhead;
  - the new IG with a held ``PathGradients`` (traced once, before the timing);
  - the ratios new / limit (target <= 1.3) and old / limit;
  - the largest |old - new| attribution relative to each map's largest |attribution|, and
    the largest gap difference.
Each quantity is the minimum over ``--repeat`` interleaved rounds (the cores are shared); on busy
cores ``--threads 1 --clock cpu`` gives steadier ratios (CPU time of one thread).

    .venv/bin/python bench/ig_limit.py [--images 20] [--repeat 3] [--threads 0] [--clock wall] [--data PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xaikit import ig as xig  # noqa: E402
from xaikit.baselines import blurred  # noqa: E402
from xaikit.config import load_config  # noqa: E402
from xaikit.data import decode_bytes  # noqa: E402
from xaikit.model import build_cnn, logits_model  # noqa: E402
from xaikit.pipeline import to_float  # noqa: E402
from xaikit.scores import margin_model  # noqa: E402


def old_integrated_gradients(model, images, baseline, target, *, steps=64, batch_size=64,
                             method="trapezoid"):
    """IG before this change: a tf.function made (and traced) per call, gradients copied to
    the host per batch and summed with np.add.at, F(x) and F(b) by two predict calls."""
    x, b, target = xig._check(images, baseline, target)
    alphas, weights = xig.quadrature(steps, method)

    @tf.function(reduce_retracing=True)
    def path_gradients(x, b, alpha, target):
        path = b + alpha[:, None, None, None] * (x - b)
        with tf.GradientTape() as tape:
            tape.watch(path)
            out = model(path, training=False)
            chosen = tf.gather(out, target, axis=1, batch_dims=1)
        return tape.gradient(chosen, path)

    n, k = len(x), len(alphas)
    total = np.zeros_like(x)
    pair_image, pair_step = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    x_t, b_t = tf.constant(x), tf.constant(b)
    for start in range(0, n * k, batch_size):
        img, stp = pair_image[start:start + batch_size], pair_step[start:start + batch_size]
        grads = path_gradients(tf.gather(x_t, img), tf.gather(b_t, img),
                               tf.constant(alphas[stp]), tf.constant(target[img])).numpy()
        np.add.at(total, img, grads * weights[stp][:, None, None, None])
    attributions = ((x - b) * total).astype(np.float32)
    f_x, f_b = xig.scores(model, x, target), xig.scores(model, b, target)
    delta = f_x - f_b
    gap = np.abs(attributions.reshape(n, -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)
    return attributions, gap


def limit_function(model):
    """Forward+backward of the target score for a ready batch of points, compiled once."""
    @tf.function
    def forward_backward(points, target):
        with tf.GradientTape() as tape:
            tape.watch(points)
            chosen = tf.gather(model(points, training=False), target, axis=1, batch_dims=1)
        return tape.gradient(chosen, points)
    return forward_backward


def load_images(data: Path | None, n: int, size: int) -> tuple[np.ndarray, str]:
    files = []
    if data is not None:
        for cls in ("NORMAL", "PNEUMONIA"):
            folder = next((p for p in (data / "train" / cls, data / "chest_xray" / "train" / cls)
                           if p.is_dir()), None)
            if folder is not None:
                files += sorted(folder.glob("*.jpeg"))[: (n + 1) // 2]
    if len(files) >= n:
        arrays = [decode_bytes(f.read_bytes(), size)[0] for f in files[:n]]
        return to_float(np.stack(arrays)), f"{n} training images of {data}"
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n, size, size, 1)).astype(np.float32), f"{n} uniform-noise images"


def timed(fn, clock=time.perf_counter) -> float:
    t = clock()
    fn()
    return clock() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("XAIKIT_DATA", ROOT.parent / "shared" / "data" / "chest_xray")))
    ap.add_argument("--threads", type=int, default=0,
                    help="TensorFlow intra-op threads (0: its default); 1 steadies ratios on busy cores")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: this process's CPU time, which waiting for a busy core does not "
                         "inflate (use with --threads 1)")
    args = ap.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    a = load_config((ROOT / "xaikit.toml").read_text()).section("attribution")
    steps, batch = a["ig_steps"], a["ig_batch_size"]
    model = margin_model(logits_model(build_cnn(args.size, 1, seed=0)))
    x, where = load_images(args.data if args.data.is_dir() else None, args.images, args.size)
    b = blurred(x, a["blur_sigma"] * args.size / 128)
    target = np.argmax(model.predict(x, verbose=0), 1)
    n, k = len(x), steps + 1

    forward_backward = limit_function(model)
    alphas = xig.quadrature(steps)[0][:, None, None, None]
    points = [tf.constant(b[i] + alphas * (x[i] - b[i])) for i in range(n)]   # ready, as tensors
    point_target = [tf.constant(np.full(k, t)) for t in target]

    def limit_run():
        for p, t in zip(points, point_target):
            forward_backward(p, t).numpy()
    held = xig.PathGradients(model)
    for f in (lambda: forward_backward(points[0], point_target[0]).numpy(),     # warm-ups
              lambda: old_integrated_gradients(model, x[:1], b[:1], target[:1], steps=2),
              lambda: xig.integrated_gradients(held, x[:1], b[:1], target[:1], steps=2)):
        f()
    traces_before = held.traces

    runs = {"limit": limit_run,
            "old 1": lambda: old_integrated_gradients(model, x[:1], b[:1], target[:1], steps=steps,
                                                      batch_size=batch),
            "old N": lambda: old_integrated_gradients(model, x, b, target, steps=steps, batch_size=batch),
            "new 1": lambda: xig.integrated_gradients(model, x[:1], b[:1], target[:1], steps=steps,
                                                      batch_size=batch),
            "new N": lambda: xig.integrated_gradients(model, x, b, target, steps=steps, batch_size=batch),
            "held 1": lambda: xig.integrated_gradients(held, x[:1], b[:1], target[:1], steps=steps,
                                                       batch_size=batch),
            "held N": lambda: xig.integrated_gradients(held, x, b, target, steps=steps, batch_size=batch)}
    best = {name: np.inf for name in runs}
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for _ in range(args.repeat):            # interleaved: every variant sees the same load
        for name, fn in runs.items():
            best[name] = min(best[name], timed(fn, clock))

    old_attr, old_gap = old_integrated_gradients(model, x, b, target, steps=steps, batch_size=batch)
    new = xig.integrated_gradients(held, x, b, target, steps=steps, batch_size=batch)
    scale = np.abs(old_attr).reshape(n, -1).max(1)
    rel = (np.abs(new.attributions - old_attr).reshape(n, -1).max(1) / scale).max()

    limit = best["limit"] / n
    print(f"{where} at {args.size} px; margin model of build_cnn (untrained); blurred baseline; "
          f"{steps} steps ({k} points per image), batch {batch}; min of {args.repeat} rounds; "
          f"{os.cpu_count()} cores (shared), {args.threads or 'default'} TF threads, {args.clock} clock")
    print(f"limit: forward+backward of each image's {k} points as one compiled batch  {limit:.3f} s/image")
    print(f"{'IG':<22} {'1 image (s)':>11} {f'{n} images (s)':>14} {'s/image':>8} {'per call (s)':>12} "
          f"{'/ limit':>8}")
    for label, key in (("old (before)", "old"), ("new, model passed", "new"),
                       ("new, held object", "held")):
        one, many = best[f"{key} 1"], best[f"{key} N"]
        slope = (many - one) / (n - 1)
        print(f"{label:<22} {one:11.3f} {many:14.3f} {slope:8.3f} {one - slope:12.3f} "
              f"{slope / limit:8.2f}")
    print(f"held object, all costs included: {best['held N'] / n:.3f} s/image = "
          f"{best['held N'] / n / limit:.2f} x limit; traces during the timing: "
          f"{held.traces - traces_before}")
    print(f"ratio new / limit (per image, {n} images): {(best['new N'] - best['new 1']) / (n - 1) / limit:.2f}"
          f"  (old: {(best['old N'] - best['old 1']) / (n - 1) / limit:.2f}; target <= 1.3)")
    delta = np.abs(new.f_image - new.f_baseline)
    print(f"old vs new maps: max |difference| / max |map| = {rel:.1e}; max gap difference "
          f"{np.abs(new.gap - old_gap).max():.1e} (|F(x) - F(b)| from {delta.min():.2g} to {delta.max():.2g})")


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    main()

"""Benchmark: where a training epoch spends its time, and old vs new ways in one run.

Prints, on the same real images (the decoded dataset of $XAIKIT_DATA) in the same process:
  1. a profile of one epoch of the main recipe: the tf.data pipeline alone (with the old dense
     15x15 blur and with the separable blur), the train steps alone on ready batches, and a
     whole epoch each way;
  2. one epoch of the random-label recipe, old (2,000 images, a clean train-accuracy pass every
     epoch) vs new (the configured subset, a clean pass only once the running accuracy is close);
  3. Integrated Gradients on 8 images, old (eager model calls) vs new (one compiled graph);
and the ratios old / new. Validation and test metrics play no part here: nothing is scored.

    XAIKIT_DATA=... .venv/bin/python bench/build.py [--epochs 1]
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

from report.build import make_context  # noqa: E402
from report.models import random_subset  # noqa: E402
from xaikit import ig as xig  # noqa: E402
from xaikit import pipeline  # noqa: E402
from xaikit.baselines import blurred  # noqa: E402
from xaikit.model import build_cnn, logits_model  # noqa: E402
from xaikit.pipeline import AugmentParams, make_dataset  # noqa: E402
from xaikit.train import class_weight_vector  # noqa: E402

OLD_MAIN_EPOCHS = 30          # the main recipe before this change (xaikit.toml train.epochs)
OLD_RANDOM_SUBSET = 2000      # the random-label subset before this change


def dense_blur(x, sigma):
    """The blur before this change: one dense (2r+1)^2 depthwise kernel."""
    taps = pipeline.gaussian_taps(sigma)
    k2 = np.outer(taps, taps)[:, :, None, None]
    kernel = tf.tile(tf.constant(k2), [1, 1, x.shape[-1], 1])
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")


def eager_ig(model, images, baseline, target, steps, batch_size):
    """IG as before this change: the same batches, one eager model call per batch."""
    alphas, weights = xig.quadrature(steps)
    n, k = len(images), len(alphas)
    total = np.zeros_like(images)
    pair_image, pair_step = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    for start in range(0, n * k, batch_size):
        img, stp = pair_image[start:start + batch_size], pair_step[start:start + batch_size]
        a = tf.constant(alphas[stp])[:, None, None, None]
        xb = tf.gather(baseline, img)
        path = xb + a * (tf.gather(images, img) - xb)
        with tf.GradientTape() as tape:
            tape.watch(path)
            chosen = tf.gather(model(path, training=False), tf.constant(target[img]), axis=1,
                               batch_dims=1)
        np.add.at(total, img, tape.gradient(chosen, path).numpy() * weights[stp][:, None, None, None])
    return (images - baseline) * total


def timed(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main_recipe_dataset(x, y, cfg, blur):
    pipeline.gaussian_blur = blur      # make_dataset traces augment_batch now, with this blur
    onehot = np.eye(2, dtype=np.float32)[y]
    return make_dataset(x, onehot, weights=class_weight_vector(y, "balanced"),
                        batch_size=cfg["train.batch_size"], training=True, seed=1,
                        augment=AugmentParams(**cfg.section("augment")))


def compiled_model(cfg, seed=1, dropout=0.5, smoothing=0.1):
    model = build_cnn(cfg["data.image_size"], 1, dropout=dropout, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model


def fit_seconds(model, ds, epochs: int) -> float:
    model.fit(ds, epochs=1, verbose=0)                       # tracing, caches
    return timed(lambda: model.fit(ds, epochs=epochs, verbose=0)) / epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs per measurement")
    args = ap.parse_args()
    ctx = make_context(None, None, (), None, ROOT / "build")
    cfg, p = ctx.cfg, ctx.prepared()
    x, y = p.x("train"), p.y("train")
    sep_blur = pipeline.gaussian_blur
    rows = []

    # 1. profile of one main-recipe epoch
    ds_old = main_recipe_dataset(x, y, cfg, dense_blur)
    ds_new = main_recipe_dataset(x, y, cfg, sep_blur)
    pipeline.gaussian_blur = sep_blur
    pipe_old = timed(lambda: [None for _ in ds_old])
    pipe_new = timed(lambda: [None for _ in ds_new])
    ready = [b for b in ds_new]                                # augmented once, then replayed
    steps_only = tf.data.Dataset.from_tensor_slices(tuple(tf.concat(c, 0) for c in zip(*ready))) \
        .batch(cfg["train.batch_size"]).cache()
    m = compiled_model(cfg)
    step_sec = fit_seconds(m, steps_only, args.epochs)
    epoch_old = fit_seconds(compiled_model(cfg), ds_old, args.epochs)
    epoch_new = fit_seconds(compiled_model(cfg), ds_new, args.epochs)
    print(f"main recipe, {len(x)} train images at {cfg['data.image_size']} px, batch {cfg['train.batch_size']}:")
    print(f"  tf.data pipeline alone, dense 15x15 blur   {pipe_old:7.2f} s/epoch")
    print(f"  tf.data pipeline alone, separable blur     {pipe_new:7.2f} s/epoch  ({pipe_old / pipe_new:.2f}x)")
    print(f"  train steps alone (batches ready)          {step_sec:7.2f} s/epoch")
    print(f"  whole epoch, old (dense blur)              {epoch_old:7.2f} s/epoch")
    print(f"  whole epoch, new (separable blur)          {epoch_new:7.2f} s/epoch  ({epoch_old / epoch_new:.2f}x)")
    new_epochs = cfg["train.epochs"]
    print(f"  recipe: old {OLD_MAIN_EPOCHS} epochs = {OLD_MAIN_EPOCHS * epoch_old:.0f} s, "
          f"new {new_epochs} epochs = {new_epochs * epoch_new:.0f} s "
          f"({OLD_MAIN_EPOCHS * epoch_old / (new_epochs * epoch_new):.2f}x shorter)")
    rows.append(("main epoch", epoch_old, epoch_new))

    # 2. random-label recipe: one epoch plus its clean train-accuracy pass
    r = cfg.section("random_labels")
    sub_new, _, permuted_new = random_subset(ctx)
    rng = np.random.default_rng(0)
    train_idx = p.idx("train")
    sub_old = train_idx[np.sort(rng.choice(len(train_idx), min(OLD_RANDOM_SUBSET, len(train_idx)),
                                           replace=False))]
    res = {}
    for tag, sub in (("old", sub_old), ("new", sub_new)):
        xs = p.images[sub]
        ys = np.eye(2, dtype=np.float32)[rng.permutation(p.labels[sub])]
        ds = make_dataset(xs, ys, batch_size=cfg["train.batch_size"], training=True, seed=0)
        model = compiled_model(cfg, seed=7, dropout=0.0, smoothing=0.0)
        fit = fit_seconds(model, ds, args.epochs)
        check = timed(lambda: model.predict(pipeline.to_float(xs), batch_size=128, verbose=0))
        res[tag] = (len(sub), fit, check)
    (n_old, fit_old, chk_old), (n_new, fit_new, chk_new) = res["old"], res["new"]
    old_epoch, new_epoch = fit_old + chk_old, fit_new     # new: the clean pass is gated
    print(f"random-label recipe (permuted labels, no augmentation):")
    print(f"  old: {n_old} images, fit {fit_old:.2f} s + clean pass {chk_old:.2f} s = {old_epoch:.2f} s/epoch")
    print(f"  new: {n_new} images, fit {fit_new:.2f} s (+ clean pass {chk_new:.2f} s only near the "
          f"target) = {new_epoch:.2f} s/epoch  ({old_epoch / new_epoch:.2f}x)")
    rows.append(("random-label epoch", old_epoch, new_epoch))

    # 3. IG on 8 images
    a = cfg.section("attribution")
    model = logits_model(compiled_model(cfg))
    xi = pipeline.to_float(p.x("test")[:8])
    bi = blurred(xi, a["blur_sigma"] * xi.shape[1] / 128)
    ti = np.argmax(model.predict(xi, verbose=0), 1)
    eager_ig(model, xi[:1], bi[:1], ti[:1], 4, a["ig_batch_size"])           # warm-up
    xig.integrated_gradients(model, xi[:1], bi[:1], ti[:1], steps=4)
    ig_old = timed(lambda: eager_ig(model, xi, bi, ti, a["ig_steps"], a["ig_batch_size"]))
    ig_new = timed(lambda: xig.integrated_gradients(model, xi, bi, ti, steps=a["ig_steps"],
                                                    batch_size=a["ig_batch_size"]))
    same = np.abs(eager_ig(model, xi, bi, ti, a["ig_steps"], a["ig_batch_size"]) -
                  xig.integrated_gradients(model, xi, bi, ti, steps=a["ig_steps"],
                                           batch_size=a["ig_batch_size"]).attributions).max()
    print(f"IG, 8 images, {a['ig_steps']} steps, batch {a['ig_batch_size']}: old (eager) {ig_old:.2f} s, "
          f"new (compiled) {ig_new:.2f} s ({ig_old / ig_new:.2f}x); max |difference| {same:.2e}")
    rows.append(("IG 8 images", ig_old, ig_new))
    print("summary (old / new):", "; ".join(f"{k} {o / n:.2f}x" for k, o, n in rows))


if __name__ == "__main__":
    main()

"""Integrated Gradients (Sundararajan et al. 2017) on ``tf.GradientTape``.

All interpolation points of all images are flattened into one stream and evaluated in
batches, one tape per batch. The model passed in must output class scores; the report
passes the pre-softmax ``logits`` model, so attributions explain the target's logit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

METHODS = ("trapezoid", "riemann_left", "gauss_legendre")


@dataclass(frozen=True)
class IGResult:
    attributions: np.ndarray   # float32, shaped like the images
    gap: np.ndarray            # relative completeness gap per image
    f_image: np.ndarray        # F_target(x)
    f_baseline: np.ndarray     # F_target(baseline)
    steps: int
    method: str


def quadrature(steps: int, method: str = "trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Nodes alpha in [0, 1] and weights summing to 1 for the path integral."""
    if steps < 1:
        raise ValueError(f"steps expects >= 1, got {steps}")
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2.0
    elif method == "riemann_left":
        alphas = np.arange(steps) / steps
        weights = np.full(steps, 1.0 / steps)
    elif method == "gauss_legendre":
        nodes, w = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1.0) / 2.0, w / 2.0
    else:
        raise ValueError(f"method expects one of {METHODS}, got {method!r}")
    return alphas.astype(np.float32), weights.astype(np.float32)


def _check(images: np.ndarray, baseline: np.ndarray, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise ValueError(f"images expects a 4-D array N x H x W x C, got "
                         f"{type(images).__name__} with shape {getattr(images, 'shape', None)}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images expects a float dtype (values in the model's input range), "
                         f"got {images.dtype}")
    baseline = np.asarray(baseline, dtype=np.float32)
    if baseline.shape == images.shape[1:]:
        baseline = np.broadcast_to(baseline, images.shape)
    if baseline.shape != images.shape:
        raise ValueError(f"baseline expects shape {images.shape} or {images.shape[1:]}, "
                         f"got {baseline.shape}")
    target = np.broadcast_to(np.asarray(target, dtype=np.int64), (len(images),)).copy()
    return images.astype(np.float32), baseline, target


def scores(model: keras.Model, images: np.ndarray, target: np.ndarray,
           batch_size: int = 128) -> np.ndarray:
    """F_target(x) for each image."""
    out = np.asarray(model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0))
    return out[np.arange(len(images)), np.asarray(target)]


def _path_gradients(model: keras.Model) -> Callable:
    """A compiled function: gradients of the target score at points b + alpha (x - b).

    One graph per call of :func:`integrated_gradients` (traced once per batch shape), which
    runs the model about twice as fast as eager calls on the CPU (``bench/build.py``).
    """

    @tf.function(reduce_retracing=True)
    def path_gradients(x, b, alpha, target):
        path = b + alpha[:, None, None, None] * (x - b)
        with tf.GradientTape() as tape:
            tape.watch(path)
            out = model(path, training=False)
            chosen = tf.gather(out, target, axis=1, batch_dims=1)
        return tape.gradient(chosen, path)

    return path_gradients


def integrated_gradients(model: keras.Model, images: np.ndarray, baseline: np.ndarray,
                         target, *, steps: int = 64, batch_size: int = 64,
                         method: str = "trapezoid",
                         progress: Callable[[int], None] | None = None) -> IGResult:
    """IG of ``model``'s ``target`` output along the straight line from ``baseline`` to ``images``.

    ``baseline`` is one image (H x W x C) or one per image; ``target`` an int or one per
    image. Returns attributions and the completeness gap
    ``|sum(attr) - (F(x) - F(b))| / |F(x) - F(b)|`` per image. ``progress`` is called with
    the number of path points done after each batch (for a progress bar).
    """
    x, b, target = _check(images, baseline, target)
    if batch_size < 1:
        raise ValueError(f"batch_size expects >= 1, got {batch_size}")
    alphas, weights = quadrature(steps, method)
    n, k = len(x), len(alphas)
    total = np.zeros_like(x)
    pair_image = np.repeat(np.arange(n), k)
    pair_step = np.tile(np.arange(k), n)
    x_t, b_t = tf.constant(x), tf.constant(b)
    path_gradients = _path_gradients(model)
    for start in range(0, n * k, batch_size):
        img = pair_image[start:start + batch_size]
        stp = pair_step[start:start + batch_size]
        grads = path_gradients(tf.gather(x_t, img), tf.gather(b_t, img),
                               tf.constant(alphas[stp]), tf.constant(target[img])).numpy()
        np.add.at(total, img, grads * weights[stp][:, None, None, None])
        if progress is not None:
            progress(len(img))
    attributions = ((x - b) * total).astype(np.float32)
    f_x = scores(model, x, target)
    f_b = scores(model, b, target)
    delta = f_x - f_b
    gap = np.abs(attributions.reshape(n, -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)
    return IGResult(attributions, gap.astype(np.float64), f_x, f_b, steps, method)


def integrated_gradients_adaptive(model: keras.Model, images: np.ndarray, baseline: np.ndarray,
                                  target, *, steps: int = 64, tolerance: float = 0.01,
                                  max_steps: int = 512, batch_size: int = 64,
                                  method: str = "trapezoid",
                                  progress: Callable[[int], None] | None = None) -> IGResult:
    """As :func:`integrated_gradients`, doubling steps for images whose gap exceeds ``tolerance``.

    ``steps`` in the result is the largest step count used.
    """
    x, b, t = _check(images, baseline, target)
    res = integrated_gradients(model, x, b, t, steps=steps, batch_size=batch_size, method=method,
                               progress=progress)
    attr, gap = res.attributions.copy(), res.gap.copy()
    used = steps
    while used < max_steps and np.any(gap > tolerance):
        used *= 2
        redo = np.flatnonzero(gap > tolerance)
        again = integrated_gradients(model, x[redo], b[redo], t[redo], steps=used,
                                     batch_size=batch_size, method=method, progress=progress)
        attr[redo], gap[redo] = again.attributions, again.gap
    return IGResult(attr, gap, res.f_image, res.f_baseline, used, method)


def integrated_gradients_expected(model: keras.Model, images: np.ndarray,
                                  baselines: np.ndarray, target, **kwargs) -> IGResult:
    """IG averaged over several baselines (k x N x H x W x C), e.g. k noise draws."""
    baselines = np.asarray(baselines, np.float32)
    if baselines.ndim != 5:
        raise ValueError(f"baselines expects k x N x H x W x C, got shape {baselines.shape}")
    runs = [integrated_gradients(model, images, b, target, **kwargs) for b in baselines]
    attr = np.mean([r.attributions for r in runs], axis=0)
    f_x = runs[0].f_image
    f_b = np.mean([r.f_baseline for r in runs], axis=0)
    delta = f_x - f_b
    gap = np.abs(attr.reshape(len(attr), -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)
    return IGResult(attr.astype(np.float32), gap, f_x, f_b, runs[0].steps, runs[0].method)

"""Integrated Gradients (Sundararajan et al. 2017) on ``tf.GradientTape``.

All interpolation points of all images are flattened into one stream and evaluated in
batches, one tape per batch, by a graph that a :class:`PathGradients` traces once: it builds the
points, sums the weighted gradients per image and returns the scores at the points, so F(x) and
F(baseline) for the completeness gap come from the path's ends (``bench/ig_limit.py`` times it
against the model's own forward+backward pass). The model passed in must output class
scores; the report passes the logit-margin model (``xaikit.scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from . import forward

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
    out = forward.predict(model, np.asarray(images, np.float32), batch_size=batch_size)
    return out[np.arange(len(images)), np.asarray(target)]


class PathGradients:
    """One model's compiled IG boundary: per batch of path points, the quadrature-weighted sum
    of the target score's gradients per image, and the target score at each point.

    A graph is traced once per image shape (H x W x C) and kept on this object, whatever the
    number of images, steps, batch size or quadrature (batch dimensions are left unknown in its
    signature). Hold one per model and pass it where a model is expected to explain several
    image sets without tracing again; the functions below make one per call and share it across
    their inner runs (step doubling, baseline draws). ``traces`` counts the traces so far.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.traces = 0
        self._graphs: dict[tuple, tuple[Callable, Callable]] = {}

    def _compiled(self, shape: tuple) -> tuple[Callable, Callable]:
        if shape not in self._graphs:
            images = tf.TensorSpec((None,) + shape, tf.float32)
            ints, floats = tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)
            index = tf.TensorSpec([], tf.int32)
            model = self.model

            @tf.function(input_signature=[images, images, ints, floats, floats, index, index])
            def weighted_gradients(x, b, target, alphas, weights, start, stop):
                # points start..stop-1 of the stream (image i, node j) -> i * len(alphas) + j
                self.traces += 1            # Python side: runs only while tracing
                point = tf.range(start, stop)
                k = tf.size(alphas)
                image, node = point // k, point % k
                xi, bi = tf.gather(x, image), tf.gather(b, image)
                path = bi + tf.gather(alphas, node)[:, None, None, None] * (xi - bi)
                with tf.GradientTape() as tape:
                    tape.watch(path)
                    out = model(path, training=False)
                    chosen = tf.gather(out, tf.gather(target, image), axis=1, batch_dims=1)
                grads = tape.gradient(chosen, path)
                weighted = grads * tf.gather(weights, node)[:, None, None, None]
                return tf.math.segment_sum(weighted, image - image[0]), chosen

            @tf.function(input_signature=[images, ints])
            def target_scores(x, target):
                self.traces += 1
                return tf.gather(model(x, training=False), target, axis=1, batch_dims=1)

            self._graphs[shape] = (weighted_gradients, target_scores)
        return self._graphs[shape]

    def integrate(self, x: np.ndarray, b: np.ndarray, target: np.ndarray, alphas: np.ndarray,
                  weights: np.ndarray, batch_size: int,
                  progress: Callable[[int], None] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """sum_j w_j grad F_target(b + alpha_j (x - b)) per image (N x H x W x C), with
        F_target(x) and F_target(b); the points are evaluated ``batch_size`` at a time."""
        weighted_gradients, target_scores = self._compiled(tuple(x.shape[1:]))
        n, k = len(x), len(alphas)
        x_t, b_t = tf.constant(x), tf.constant(b)
        t_t = tf.constant(target.astype(np.int32))
        a_t, w_t = tf.constant(alphas), tf.constant(weights)
        total = np.zeros_like(x)
        f_path = np.empty(n * k, np.float32)
        for start in range(0, n * k, batch_size):
            stop = min(start + batch_size, n * k)
            summed, chosen = weighted_gradients(x_t, b_t, t_t, a_t, w_t, start, stop)
            first = start // k
            total[first:first + len(summed)] += summed.numpy()
            f_path[start:stop] = chosen.numpy()
            if progress is not None:
                progress(stop - start)
        f_path = f_path.reshape(n, k)

        def at(alpha: float, images: tf.Tensor) -> np.ndarray:
            """F at the path node alpha when it is one of the nodes, else one forward pass."""
            hit = np.flatnonzero(alphas == alpha)
            if len(hit):
                return f_path[:, hit[0]]
            return np.concatenate([target_scores(images[i:i + batch_size],
                                                 t_t[i:i + batch_size]).numpy()
                                   for i in range(0, n, batch_size)])

        return total, at(1.0, x_t), at(0.0, b_t)


def _boundary(model: keras.Model | PathGradients) -> PathGradients:
    return model if isinstance(model, PathGradients) else PathGradients(model)


def integrated_gradients(model: keras.Model | PathGradients, images: np.ndarray,
                         baseline: np.ndarray, target, *, steps: int = 64, batch_size: int = 64,
                         method: str = "trapezoid",
                         progress: Callable[[int], None] | None = None) -> IGResult:
    """IG of ``model``'s ``target`` output along the straight line from ``baseline`` to ``images``.

    ``baseline`` is one image (H x W x C) or one per image; ``target`` an int or one per
    image. Returns attributions and the completeness gap
    ``|sum(attr) - (F(x) - F(b))| / |F(x) - F(b)|`` per image, where F(x) and F(b) are the
    scores at the path's ends (computed with the path when they are quadrature nodes).
    ``progress`` is called with the number of path points done after each batch (for a
    progress bar). ``model`` may be a :class:`PathGradients` held by the caller, which is
    traced once for all its calls.
    """
    x, b, target = _check(images, baseline, target)
    if batch_size < 1:
        raise ValueError(f"batch_size expects >= 1, got {batch_size}")
    alphas, weights = quadrature(steps, method)
    total, f_x, f_b = _boundary(model).integrate(x, b, target, alphas, weights, batch_size,
                                                 progress)
    attributions = ((x - b) * total).astype(np.float32)
    delta = f_x - f_b
    gap = np.abs(attributions.reshape(len(x), -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)
    return IGResult(attributions, gap.astype(np.float64), f_x, f_b, steps, method)


def integrated_gradients_adaptive(model: keras.Model | PathGradients, images: np.ndarray,
                                  baseline: np.ndarray, target, *, steps: int = 64, tolerance: float = 0.01,
                                  max_steps: int = 512, batch_size: int = 64,
                                  method: str = "trapezoid",
                                  progress: Callable[[int], None] | None = None) -> IGResult:
    """As :func:`integrated_gradients`, doubling steps for images whose gap exceeds ``tolerance``.

    ``steps`` in the result is the largest step count used.
    """
    x, b, t = _check(images, baseline, target)
    model = _boundary(model)             # one trace for all the doublings
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


def integrated_gradients_expected(model: keras.Model | PathGradients, images: np.ndarray,
                                  baselines: np.ndarray, target, **kwargs) -> IGResult:
    """IG averaged over several baselines (k x N x H x W x C), e.g. k noise draws."""
    baselines = np.asarray(baselines, np.float32)
    if baselines.ndim != 5:
        raise ValueError(f"baselines expects k x N x H x W x C, got shape {baselines.shape}")
    model = _boundary(model)             # one trace for all the draws
    runs = [integrated_gradients(model, images, b, target, **kwargs) for b in baselines]
    attr = np.mean([r.attributions for r in runs], axis=0)
    f_x = runs[0].f_image
    f_b = np.mean([r.f_baseline for r in runs], axis=0)
    delta = f_x - f_b
    gap = np.abs(attr.reshape(len(attr), -1).sum(1) - delta) / np.maximum(np.abs(delta), 1e-8)
    return IGResult(attr.astype(np.float32), gap, f_x, f_b, runs[0].steps, runs[0].method)

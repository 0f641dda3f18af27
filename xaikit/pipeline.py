"""tf.data pipelines over decoded uint8 arrays: scaling, caching, shuffling, augmentation.

Order (the measured pitfall: a cache after a shuffle freezes the batch order): scale to
[0, 1] -> cache -> shuffle with reshuffle_each_iteration -> batch -> augment -> prefetch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class AugmentParams:
    rotation_deg: float = 20.0
    zoom: float = 0.2
    shift: float = 0.1
    gamma: float = 0.3
    blur_mix: float = 0.7
    blur_sigma: float = 1.5      # Gaussian blur of the sharpness augmentation, px at 128 px


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W (or N x H x W x C) -> float32 N x H x W x C in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images shaped N x H x W [x C], got shape {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def gaussian_taps(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps over +-ceil(2.5 sigma) pixels (at least +-1)."""
    if not sigma > 0:
        raise ValueError(f"sigma expects > 0, got {sigma}")
    radius = max(1, int(math.ceil(2.5 * sigma)))
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    k1 = np.exp(-0.5 * (xs / sigma) ** 2)
    return (k1 / k1.sum()).astype(np.float32)


def gaussian_blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of an N x H x W x C batch with zero padding ("SAME").

    The 2-D Gaussian is separable: a vertical then a horizontal 1-D pass (2(2r+1) taps per
    pixel) equals the dense (2r+1)^2 kernel exactly, also at the zero-padded border.
    """
    taps = gaussian_taps(sigma)
    column = np.tile(taps[:, None, None, None], (1, 1, x.shape[-1], 1))   # k x 1 x C x 1
    vertical, horizontal = tf.constant(column), tf.constant(column.transpose(1, 0, 2, 3))
    x = tf.nn.depthwise_conv2d(x, vertical, [1, 1, 1, 1], "SAME")
    return tf.nn.depthwise_conv2d(x, horizontal, [1, 1, 1, 1], "SAME")


def augment_batch(x: tf.Tensor, seed: tf.Tensor, params: AugmentParams) -> tf.Tensor:
    """Random affine (rotation, zoom, shift), gamma and sharpness change of a batch.

    ``seed`` is a shape-[2] int tensor; the same seed gives the same batch.
    """
    n = tf.shape(x)[0]
    size = x.shape[1] or 128                     # static size, for the blur's pixel scale
    h = tf.cast(tf.shape(x)[1], tf.float32)
    w = tf.cast(tf.shape(x)[2], tf.float32)

    def uniform(i: int, lo: float, hi: float) -> tf.Tensor:
        return tf.random.stateless_uniform([n], seed=seed + tf.constant([0, i], tf.int64) * 7919,
                                           minval=lo, maxval=hi)

    theta = uniform(1, -1.0, 1.0) * params.rotation_deg * math.pi / 180.0
    zoom = uniform(2, 1.0 - params.zoom, 1.0 + params.zoom)
    tx = uniform(3, -params.shift, params.shift) * w
    ty = uniform(4, -params.shift, params.shift) * h
    cos, sin = tf.cos(theta) / zoom, tf.sin(theta) / zoom
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    if params.gamma > 0:
        g = uniform(5, 1.0 - params.gamma, 1.0 + params.gamma)
        x = tf.pow(tf.clip_by_value(x, 1e-6, 1.0), g[:, None, None, None])
    if params.blur_mix > 0:
        blurred = gaussian_blur(x, params.blur_sigma * size / 128.0)
        a = uniform(6, -params.blur_mix / 2.0, params.blur_mix)
        x = x + a[:, None, None, None] * (blurred - x)
    return tf.clip_by_value(x, 0.0, 1.0)


def make_dataset(images: np.ndarray, targets: np.ndarray, *, batch_size: int,
                 weights: np.ndarray | None = None, training: bool = False, seed: int = 0,
                 augment: AugmentParams | None = None) -> tf.data.Dataset:
    """Batches of (image, target[, weight]); shuffled and augmented only when ``training``."""
    x = to_float(images)
    if len(x) != len(targets):
        raise ValueError(f"images and targets differ in length: {len(x)} vs {len(targets)}")
    parts = (x, np.asarray(targets, np.float32))
    if weights is not None:
        parts = parts + (np.asarray(weights, np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(parts).cache()
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, s: (augment_batch(batch[0], s, augment),) + tuple(batch[1:]),
            num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

"""IG baselines as functions of the images (float, model input range [0, 1])."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BASELINES = ("black", "white", "blurred", "noise", "train_mean")


def black(images: np.ndarray) -> np.ndarray:
    return np.zeros_like(images, dtype=np.float32)


def white(images: np.ndarray) -> np.ndarray:
    return np.ones_like(images, dtype=np.float32)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image over its spatial axes (N x H x W x C)."""
    if sigma <= 0:
        raise ValueError(f"sigma expects > 0, got {sigma}")
    return ndimage.gaussian_filter(np.asarray(images, np.float32), sigma=(0, sigma, sigma, 0))


def uniform_noise(images: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``draws`` uniform [0, 1] noise images per image: shape (draws, N, H, W, C)."""
    if draws < 1:
        raise ValueError(f"draws expects >= 1, got {draws}")
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, size=(draws,) + images.shape).astype(np.float32)


def train_mean(images: np.ndarray, mean_image: np.ndarray) -> np.ndarray:
    """The training-set mean image (H x W x C) for every image."""
    mean_image = np.asarray(mean_image, np.float32)
    if mean_image.shape != images.shape[1:]:
        raise ValueError(f"mean_image expects shape {images.shape[1:]}, got {mean_image.shape}")
    return np.broadcast_to(mean_image, images.shape).copy()

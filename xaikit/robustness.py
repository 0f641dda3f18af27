"""Shortcut checks on held-out images: does the prediction move when only sharpness changes?"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from scipy import ndimage

from .pipeline import to_float
from .train import predict_probs


@dataclass(frozen=True)
class BlurSensitivity:
    sigma: float
    mean_shift: float        # mean change of P(PNEUMONIA) when the images are blurred
    flipped_to_pneumonia: float   # share of images predicted NORMAL that become PNEUMONIA (at 0.5)
    n: int


def blur_sensitivity(model: keras.Model, images: np.ndarray, sigma: float) -> BlurSensitivity:
    """Blur each image (Gaussian, ``sigma`` px) and measure how P(PNEUMONIA) moves."""
    x = to_float(images)
    if sigma <= 0:
        raise ValueError(f"sigma expects > 0, got {sigma}")
    blurred = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))
    p0, p1 = predict_probs(model, x), predict_probs(model, blurred)
    normal = p0 < 0.5
    flipped = float(np.mean(p1[normal] >= 0.5)) if normal.any() else 0.0
    return BlurSensitivity(float(sigma), float(np.mean(p1 - p0)), flipped, int(len(x)))

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


def blur_sensitivity(model: keras.Model, images: np.ndarray, sigma: float, *, threshold: float) -> BlurSensitivity:
    """Blur each image (Gaussian, ``sigma`` px) and measure how P(PNEUMONIA) moves; ``flipped``: the
    share of the images decided NORMAL at ``threshold`` (the model's operating threshold) that the
    blur turns to PNEUMONIA."""
    x = to_float(images)
    if sigma <= 0:
        raise ValueError(f"sigma expects > 0, got {sigma}")
    blurred = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))
    p0, p1 = predict_probs(model, x), predict_probs(model, blurred)
    if not 0.0 <= threshold <= 1.0:      # a collapsed model's validation threshold can be 0 or 1
        raise ValueError(f"threshold expects a probability in [0, 1], got {threshold}")
    normal = p0 < threshold
    flipped = float(np.mean(p1[normal] >= threshold)) if normal.any() else 0.0
    return BlurSensitivity(float(sigma), float(np.mean(p1 - p0)), flipped, int(len(x)))

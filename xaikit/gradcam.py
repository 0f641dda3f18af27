"""Grad-CAM (Selvaraju et al.) through tf-keras-vis. The only module that imports tf_keras_vis.

Measured pitfall (tf-keras-vis 0.8.7, Keras 3.15): with ``seek_penultimate_conv_layer=True``
or a Conv2D that feeds a BatchNorm, maps came out all zeros without an error. We always name
the post-activation layer and pass ``seek_penultimate_conv_layer=False``.

Upsampling: tf-keras-vis's ``expand_cam=True`` resizes with ``scipy.ndimage.zoom(order=1)``, which is
corner-aligned (the outer cells' centres land on the image corners, so an 8x8 map at 64 px moves cell
centres outwards by up to 3.5 px, and more at larger sizes). We take the map at the layer's own
resolution (``expand_cam=False``) and upsample it centre-aligned with :func:`xaikit.regions.upsample`.
"""

from __future__ import annotations

import keras
import numpy as np
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from .regions import upsample
from .scores import margin_score

SCORES = ("margin", "logit")


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each non-negative map to [0, 1] by its maximum; an all-zero map stays zero."""
    maps = np.maximum(np.asarray(maps, np.float32), 0.0)
    peak = maps.reshape(len(maps), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)
    return maps / scale.reshape((-1,) + (1,) * (maps.ndim - 1))


class GradcamExplainer:
    """One tf-keras-vis ``Gradcam`` per model (it clones the model once), reused across calls.

    The last layer's activation (softmax) is replaced by a linear one in the clone, so maps
    explain ``score``: the logit margin z_target - z_other (``"margin"``, the decision of a
    two-class softmax) or the target's logit alone (``"logit"``). The caller's model is not
    modified.
    """

    def __init__(self, model: keras.Model, layer: str = "last_conv", score: str = "margin"):
        if score not in SCORES:
            raise ValueError(f"score expects one of {SCORES}, got {score!r}")
        names = [l.name for l in model.layers]
        if layer not in names:
            conv = [n for n, l in zip(names, model.layers) if isinstance(l, keras.layers.Conv2D)]
            raise ValueError(f"layer {layer!r} not found in model {model.name!r}; "
                             f"expected one of its conv layers {conv}")
        self.layer, self.score = layer, score
        self._gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)

    def set_weights(self, weights: list) -> None:
        """Give the explainer's clone new weights of the same architecture (``model.get_weights()``
        of another model like it, e.g. each step of a cascading randomization), without cloning again."""
        self._gradcam.model.set_weights(weights)

    def grid(self, images: np.ndarray, target, *, batch_size: int = 64) -> np.ndarray:
        """Non-negative maps at the layer's own resolution (N x h x w, float32, not normalised)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4:
            raise ValueError(f"images expects N x H x W x C, got shape {images.shape}")
        target = np.broadcast_to(np.asarray(target, int), (len(images),))
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            t = [int(v) for v in target[start:start + batch_size]]
            score = margin_score(t) if self.score == "margin" else CategoricalScore(t)
            cam = self._gradcam(score, chunk, penultimate_layer=self.layer,
                                seek_penultimate_conv_layer=False, normalize_cam=False,
                                expand_cam=False)
            out.append(np.asarray(cam, np.float32).reshape(len(chunk), *np.shape(cam)[-2:]))
        return np.concatenate(out) if out else np.zeros((0, 1, 1), np.float32)

    def __call__(self, images: np.ndarray, target, *, batch_size: int = 64) -> np.ndarray:
        """Maps (N x H x W, float32 in [0, 1]) for the ``target`` class (int or one per image),
        upsampled centre-aligned from the layer's grid (:data:`xaikit.regions.UPSAMPLING`)."""
        images = np.asarray(images, np.float32)
        cams = self.grid(images, target, batch_size=batch_size)
        if len(cams) == 0:
            return np.zeros(images.shape[:3], np.float32)
        return normalize_maps(upsample(cams, images.shape[1:3]).astype(np.float32))


def gradcam(model: keras.Model, images: np.ndarray, target, *, layer: str = "last_conv",
            score: str = "margin") -> np.ndarray:
    """Convenience: Grad-CAM maps for one call (builds a fresh explainer)."""
    return GradcamExplainer(model, layer, score)(images, target)

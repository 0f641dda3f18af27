"""The explained score of a two-logit classifier: the logit margin z_target - z_other.

With a softmax over two logits the decision depends only on z_1 - z_0 (P(class 1) is the
sigmoid of it), so the margin is the score that moves the prediction; a single logit can
rise for both classes at once without changing the decision.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf


def _check_two(n: int) -> None:
    if n != 2:
        raise ValueError(f"the logit margin expects a model with 2 logits, got {n}")


def margin_model(logits: keras.Model) -> keras.Model:
    """A model sharing ``logits``' weights whose output column c is z_c - z_other."""
    _check_two(int(logits.output.shape[-1]))
    layer = keras.layers.Dense(2, use_bias=False, trainable=False, name="margin")
    out = layer(logits.output)
    layer.set_weights([np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)])
    return keras.Model(logits.inputs, out, name=logits.name + "_margin")


def margin_score(targets) -> Callable:
    """A tf-keras-vis score: z_target - z_other per image of a batch of two logits."""
    idx = tf.constant(np.asarray(targets, np.int32).reshape(-1))

    def score(output):
        _check_two(int(output.shape[-1]))
        z_t = tf.gather(output, idx, axis=1, batch_dims=1)
        z_o = tf.gather(output, 1 - idx, axis=1, batch_dims=1)
        return z_t - z_o

    return score

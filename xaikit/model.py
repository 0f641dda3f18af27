"""The classifier: a small functional CNN with named layers and a 2-unit softmax head."""

from __future__ import annotations

import keras
from keras import layers, ops

CLASS_NAMES = ("NORMAL", "PNEUMONIA")
LAST_CONV = "last_conv"


@keras.saving.register_keras_serializable(package="xaikit")
class PerImageStandardization(layers.Layer):
    """(x - mean) / max(std, 1/sqrt(n)) per image, as ``tf.image.per_image_standardization``.

    Inside the model, so attribution methods see the model's real input space ([0, 1]).
    """

    def call(self, x):
        n = ops.cast(ops.prod(ops.shape(x)[1:]), x.dtype)
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.std(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) / ops.maximum(std, 1.0 / ops.sqrt(n))


def build_cnn(image_size: int, channels: int = 1, *, dropout: float = 0.5,
              seed: int = 0) -> keras.Model:
    """Stride-4 stem then three conv blocks; the last conv layer is named ``last_conv``.

    Output ``probs`` is a softmax over (NORMAL, PNEUMONIA); the layer before it, ``logits``,
    gives the pre-softmax class scores used for attribution.
    """
    if image_size < 32:
        raise ValueError(f"image_size expects >= 32, got {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels expects 1 or 3, got {channels}")

    def init(i: int):
        return keras.initializers.HeUniform(seed=seed * 100 + i)

    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = PerImageStandardization(name="standardize")(inputs)
    x = layers.Conv2D(32, 5, strides=2, padding="same", activation="relu",
                      kernel_initializer=init(0), name="stem_conv")(x)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu",
                      kernel_initializer=init(1), name="conv_block1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu",
                      kernel_initializer=init(2), name="conv_block2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu",
                      kernel_initializer=init(3), name=LAST_CONV)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    logits = layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 9),
                          name="logits")(x)
    probs = layers.Activation("softmax", name="probs")(logits)
    return keras.Model(inputs, probs, name="xaikit_cnn")


def logits_model(model: keras.Model) -> keras.Model:
    """A new model sharing ``model``'s weights whose output is the pre-softmax ``logits``."""
    return keras.Model(model.inputs, model.get_layer("logits").output, name=model.name + "_logits")


def architecture_table(model: keras.Model) -> list[dict]:
    """One row per layer: name, type, output shape, parameter count."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "output shape": "x".join("N" if s is None else str(s) for s in shape),
                     "params": int(layer.count_params())})
    return rows

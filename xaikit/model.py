"""The classifier: built-in CNN designs, the contract every model must meet, and helpers.

Built-in designs (``[model] architecture``): ``baseline`` (:func:`build_cnn`, the study's CNN) and
``batchnorm`` (:func:`build_batchnorm_cnn`: conv blocks with batch normalisation). A user builder
``module:function`` has the signature of :data:`BUILDERS`' values:
``build(image_size, channels, *, seed, dropout) -> keras.Model``.

Every model, built or loaded, passes :func:`check_contract` before it is trained or explained:
two classes (a 2-unit softmax, or a 1-unit sigmoid explained as its logit) on images of the
configured size and channels, a pre-softmax output found by name (``logits``) or position (the
input of the final softmax), and a Grad-CAM layer when the model has one (:func:`gradcam_layers`).
:func:`as_two_class` brings every accepted model to one form: its last layer is a softmax
``Activation`` whose input is the 2-unit logits, which IG (:func:`logits_model`) and Grad-CAM
(tf-keras-vis's ``ReplaceToLinear``) explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from .errors import ModelError

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


BN_MOMENTUM = 0.9    # Keras' 0.99 leaves the moving statistics near their start after the quick profile's
                     # ~30 steps (validation accuracy 0.5 in a 3-epoch run); 0.9 forgets the start in ~30 steps


def build_batchnorm_cnn(image_size: int, channels: int = 1, *, dropout: float = 0.5,
                        seed: int = 0) -> keras.Model:
    """A design that differs in kind from :func:`build_cnn`: four blocks of two 3x3 convolutions,
    each followed by batch normalisation and ReLU (a VGG-like stack; the first convolution has
    stride 2, so it costs about as much as the baseline), max-pooling between blocks. Convolutions carry no bias (the batch normalisation's shift replaces it); the
    post-activation ReLU of each block is named ``block{i}`` (Grad-CAM reads post-activation
    layers: see xaikit.gradcam). Same head as the baseline: global average pooling, dropout,
    ``logits``, ``probs``."""
    if image_size < 32:
        raise ValueError(f"image_size expects >= 32, got {image_size}")

    def init(i: int):
        return keras.initializers.HeUniform(seed=seed * 100 + i)

    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = PerImageStandardization(name="standardize")(inputs)
    k = 0
    for b, width in enumerate((16, 32, 64, 128), start=1):
        if b > 1:
            x = layers.MaxPooling2D(2, name=f"pool{b - 1}")(x)
        for j in (1, 2):
            x = layers.Conv2D(width, 3, strides=2 if k == 0 else 1, padding="same", use_bias=False,
                              kernel_initializer=init(k), name=f"block{b}_conv{j}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{b}_bn{j}")(x)
            x = layers.Activation("relu", name=f"block{b}" if j == 2 else f"block{b}_relu{j}")(x)
            k += 1
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    logits = layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 100 + 99),
                          name="logits")(x)
    probs = layers.Activation("softmax", name="probs")(logits)
    return keras.Model(inputs, probs, name="xaikit_batchnorm_cnn")


Builder = Callable[..., keras.Model]      # build(image_size, channels, *, seed, dropout) -> keras.Model
BUILDERS: dict[str, Builder] = {"baseline": build_cnn, "batchnorm": build_batchnorm_cnn}
DESCRIPTIONS = {
    "baseline": "a strided convolution and a max-pool (the stem) shrink the input early, then three convolution "
                "blocks with ReLU and growing width; no batch normalisation",
    "batchnorm": "four blocks of two 3x3 convolutions (the first with stride 2), each followed by batch "
                 "normalisation and ReLU, with max-pooling between blocks and growing width"}


class ContractError(ModelError):
    """A model does not meet the contract of :func:`check_contract` (one line: expected vs found)."""


@keras.saving.register_keras_serializable(package="xaikit")
class TwoLogits(layers.Layer):
    """z (N x 1, the logit of a sigmoid) -> [0, z]: softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)],
    so a one-logit sigmoid model becomes a two-class softmax with the same probabilities and
    the logit margin z_1 - z_0 = z."""

    def call(self, z):
        return ops.concatenate([ops.zeros_like(z), z], axis=-1)


def _activation_name(layer) -> str | None:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None) if act is not None else None


def _linear_copy(layer, name: str, source) -> keras.KerasTensor:
    """A linear Dense with ``layer``'s weights applied to ``source`` (``layer`` ends in a softmax
    or sigmoid activation; the copy gives its pre-activation output)."""
    cfg = layer.get_config()
    cfg.update(name=name, activation="linear")
    copy = layers.Dense.from_config(cfg)
    out = copy(source)
    copy.set_weights(layer.get_weights())
    return out


def _unique(model: keras.Model, name: str) -> str:
    names = {l.name for l in model.layers}
    while name in names:
        name = "xaikit_" + name
    return name


def as_two_class(model: keras.Model) -> keras.Model:
    """``model`` unchanged when its last layer is a softmax ``Activation`` over 2 units; else the
    same graph (shared layers) ending in one: a final ``Dense(2, softmax)`` is split into a linear
    copy (``logits``) and a softmax; a 1-unit sigmoid (final ``Dense`` or ``Activation``) becomes
    ``[0, z]`` (:class:`TwoLogits`) and a softmax. Raises :class:`ContractError` otherwise."""
    if not isinstance(model, keras.Model) or not model.layers:
        raise ContractError(f"expected a keras.Model, got {type(model).__name__}")
    if len(model.outputs) != 1:
        raise ContractError(f"the model expects one output (class probabilities), got {len(model.outputs)}")
    last = model.layers[-1]
    units = model.outputs[0].shape[-1]
    act = _activation_name(last)
    if len(model.outputs[0].shape) != 2 or units not in (1, 2) or (units == 2 and act != "softmax") or \
            (units == 1 and act != "sigmoid"):
        raise ContractError(
            f"the model's output expects two classes (NORMAL, PNEUMONIA): a 2-unit softmax or a 1-unit sigmoid; "
            f"got output shape {tuple(model.outputs[0].shape)} from a {type(last).__name__} layer "
            f"{last.name!r} with activation {act}")
    if isinstance(last, layers.Activation):
        if units == 2:
            return model
        z = last.input
    elif isinstance(last, layers.Dense):
        z = _linear_copy(last, _unique(model, "logits" if units == 2 else "logit"), last.input)
    else:
        raise ContractError(f"the pre-{act} output expects a final Dense or Activation layer to be found, "
                            f"got a {type(last).__name__} layer {last.name!r}")
    logits = z if units == 2 else TwoLogits(name=_unique(model, "logits"))(z)
    probs = layers.Activation("softmax", name=_unique(model, "probs"))(logits)
    return keras.Model(model.inputs, probs, name=model.name)


def logits_model(model: keras.Model) -> keras.Model:
    """A new model sharing ``model``'s weights whose output is the pre-softmax logits: the
    layer named ``logits`` when it has 2 units, else the input of the final softmax."""
    names = [l.name for l in model.layers]
    if "logits" in names and model.get_layer("logits").output.shape[-1] == 2:
        out = model.get_layer("logits").output
    else:
        out = as_two_class(model).layers[-1].input
    return keras.Model(model.inputs, out, name=model.name + "_logits")


def _is_conv(layer) -> bool:
    """A layer with a convolution kernel (a 4-D weight), e.g. Conv2D, or a nested backbone."""
    return any(len(w.shape) == 4 for w in layer.weights)


def _spatial(layer) -> bool:
    out = getattr(layer, "output", None)
    return out is not None and len(out.shape) == 4 and not isinstance(layer, keras.layers.InputLayer)


NO_CONV = "Grad-CAM needs a convolutional layer; this model has none"


@dataclass(frozen=True)
class GradcamLayers:
    """The layers Grad-CAM reads: ``layer`` (None when the model has no convolutional layer,
    ``reason`` then says so) and the finer ``early`` layer (None when there is none)."""

    layer: str | None
    early: str | None
    grid: int = 0
    early_grid: int = 0
    reason: str = ""


def gradcam_layers(model: keras.Model, layer: str = "auto", early: str = "auto") -> GradcamLayers:
    """Resolve ``attribution.gradcam_layer`` / ``gradcam_early_layer`` on ``model``.

    ``"auto"``: the last layer with a 4-D output (N x h x w x c) at or after the first
    convolutional layer; the early layer: the last such layer whose grid is at least 4 times
    finer than the Grad-CAM layer's (the baseline's ``last_conv`` and ``conv_block1``). A named
    layer must exist and have a 4-D output (:class:`ContractError` otherwise)."""
    ls = list(model.layers)
    first = next((i for i, l in enumerate(ls) if _is_conv(l)), None)
    spatial = [l for l in ls[first:] if _spatial(l)] if first is not None else []
    if not spatial:
        return GradcamLayers(None, None, reason=NO_CONV)

    def named(name: str, key: str):
        found = [l for l in ls if l.name == name]
        if not found or not _spatial(found[0]):
            raise ContractError(f"attribution.{key} expects 'auto' or a layer of this model with a 4-D output, "
                                f"one of {[l.name for l in spatial]}; got {name!r}")
        return found[0]

    main = spatial[-1] if layer == "auto" else named(layer, "gradcam_layer")
    grid = int(main.output.shape[1])
    if early == "auto":
        finer = [l for l in spatial if l.output.shape[1] is not None and l.output.shape[1] >= 4 * grid]
        low = finer[-1] if finer else None
    else:
        low = named(early, "gradcam_early_layer")
    return GradcamLayers(main.name, low.name if low is not None else None, grid,
                         int(low.output.shape[1]) if low is not None else 0)


@dataclass(frozen=True)
class Contract:
    """What :func:`check_contract` found: the model in its two-class form, the source of its
    logits, and the Grad-CAM layers."""

    model: keras.Model
    head: str             # "softmax" or "sigmoid" (then explained as its logit)
    cam: GradcamLayers


def check_contract(model, image_size: int, channels: int, *, gradcam_layer: str = "auto",
                   gradcam_early_layer: str = "auto") -> Contract:
    """Check a model against the study's contract; raise :class:`ContractError` (one line)."""
    if not isinstance(model, keras.Model):
        raise ContractError(f"expected a keras.Model, got {type(model).__name__}")
    if len(model.inputs) != 1:
        raise ContractError(f"the model expects one input (an image), got {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape)
    if shape[1:] != (image_size, image_size, channels):
        raise ContractError(f"the model's input expects images of {image_size} x {image_size} x {channels} "
                            f"(data.image_size, grayscale), got shape {shape}")
    head = "sigmoid" if model.outputs and model.outputs[0].shape[-1] == 1 else "softmax"
    two = as_two_class(model)
    return Contract(two, head, gradcam_layers(two, gradcam_layer, gradcam_early_layer))


def fresh_copy(model: keras.Model, seed: int) -> keras.Model:
    """Same architecture, fresh weights: ``keras.models.clone_model`` (layers made again from
    their config), then every weight with an initialiser drawn again from it with a seed from
    ``seed`` (initialisers that carry a fixed seed would otherwise repeat the file's own start)."""
    clone = keras.models.clone_model(model)
    for i, layer in enumerate(clone.layers):
        for j, var in enumerate(layer.weights):
            init = getattr(layer, f"{var.path.rsplit('/', 1)[-1]}_initializer", None)
            if init is None:
                continue
            config = keras.initializers.serialize(init)
            if isinstance(config, dict) and "seed" in config.get("config", {}):
                config["config"]["seed"] = int(seed) * 10_000 + i * 10 + j
            var.assign(np.asarray(keras.initializers.deserialize(config)(var.shape, dtype=var.dtype)))
    return clone


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

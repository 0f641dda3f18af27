"""Cascading model parameter randomization (Adebayo et al. 2018, section 3.1).

The model is cloned (the caller's model is never modified) and the weights of its layers are
re-initialised one more layer at a time, from the logits down ("top_down", the paper's
cascade) or from the input up ("bottom_up", as Hedström et al. 2023 also examine), each layer
with its own configured initialisers and a seeded draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import keras
import numpy as np

ORDERS = ("top_down", "bottom_up")


@dataclass(frozen=True)
class CascadeStep:
    randomized: tuple[str, ...]    # layer names re-initialised so far, in the order done
    model: keras.Model


def weighted_layers(model: keras.Model) -> tuple[str, ...]:
    """Names of the layers that carry trainable weights, input side first."""
    return tuple(layer.name for layer in model.layers if layer.trainable_weights)


def _reinitialise(layer, seed: int) -> None:
    for j, var in enumerate(layer.trainable_weights):
        which = var.path.rsplit("/", 1)[-1]      # kernel, bias, gamma, beta, ...
        init = getattr(layer, f"{which}_initializer", None)
        if init is None:
            raise ValueError(f"layer {layer.name!r} has no {which}_initializer to re-draw {var.path}")
        config = keras.initializers.serialize(init)
        if "seed" in config.get("config", {}):           # a random initialiser: a fresh draw
            config["config"]["seed"] = seed * 1000 + j
        fresh = keras.initializers.deserialize(config)
        var.assign(np.asarray(fresh(var.shape, dtype=var.dtype)))


def cascade(model: keras.Model, order: str, *, seed: int) -> list[CascadeStep]:
    """One model per step: step k has the first k layers of ``order`` re-initialised."""
    if order not in ORDERS:
        raise ValueError(f"order expects one of {ORDERS}, got {order!r}")
    names = weighted_layers(model)
    names = names[::-1] if order == "top_down" else names
    steps = []
    for k in range(1, len(names) + 1):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        for i, name in enumerate(names[:k]):
            _reinitialise(clone.get_layer(name), seed + i)
        steps.append(CascadeStep(tuple(names[:k]), clone))
    return steps


def copy_of(model: keras.Model) -> keras.Model:
    """A clone of ``model`` with its weights (the model to pass as ``into``)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def cascade_in_place(model: keras.Model, order: str, *, seed: int,
                     into: keras.Model | None = None) -> Iterator[CascadeStep]:
    """The steps of :func:`cascade`, with the same weights at every step, in one model: ``into``
    (a model of ``model``'s architecture, by default :func:`copy_of` ``model``) is given
    ``model``'s weights, then one more layer is re-initialised per step and ``into`` is yielded
    again. Read each step before asking for the next. A caller that traced functions on
    ``into`` (IG's graph, a Grad-CAM explainer) reuses them at every step, order and draw
    instead of tracing once per step; ``model`` is never modified."""
    if order not in ORDERS:
        raise ValueError(f"order expects one of {ORDERS}, got {order!r}")
    names = weighted_layers(model)
    names = names[::-1] if order == "top_down" else names
    if into is not None and [w.shape for w in into.weights] != [w.shape for w in model.weights]:
        raise ValueError(f"into expects the architecture of {model.name!r} "
                         f"({len(model.weights)} weights), got {len(into.weights)} weights of other shapes")
    target = copy_of(model) if into is None else into

    def steps() -> Iterator[CascadeStep]:
        target.set_weights(model.get_weights())
        for k, name in enumerate(names):
            _reinitialise(target.get_layer(name), seed + k)
            yield CascadeStep(tuple(names[:k + 1]), target)
    return steps()

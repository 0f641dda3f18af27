"""Forward passes without ``model.predict``'s per-call cost.

``keras.Model.predict`` builds a ``tf.data`` pipeline on every call (about 0.3 s on 2 CPU cores),
which dominated the deletion/insertion curves (one call per image). :func:`predict` runs the same
compiled predict function on the same batches (``predict_on_batch`` on consecutive slices of
``batch_size``), so its output equals ``model.predict(x, batch_size=batch_size)`` bit for bit
(``tests/test_forward.py``) at about a tenth of the cost for small inputs.
"""

from __future__ import annotations

import keras
import numpy as np


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The model's outputs for ``x`` (N x ...), computed ``batch_size`` images at a time."""
    x = np.asarray(x)
    if batch_size < 1:
        raise ValueError(f"batch_size expects >= 1, got {batch_size}")
    if len(x) == 0:
        raise ValueError(f"predict expects at least one input, got shape {x.shape}")
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])

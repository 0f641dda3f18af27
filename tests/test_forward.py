"""xaikit.forward.predict equals keras' predict bit for bit, on the same batches."""

import keras
import numpy as np
import pytest

from xaikit import forward


def _tiny():
    inp = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(3, 3, activation="relu")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h))


@pytest.mark.parametrize("n,batch", [(1, 32), (18, 18), (70, 32), (5, 2), (3, 1)])
def test_predict_equals_keras_predict(n, batch):
    # catches: a slice that skips or repeats images (range step or bounds), batch_size 1 refused, a last partial batch
    # dropped, or outputs concatenated in another order
    model = _tiny()
    x = np.random.default_rng(n).random((n, 12, 12, 1)).astype(np.float32)
    expected = model.predict(x, batch_size=batch, verbose=0)
    got = forward.predict(model, x, batch_size=batch)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_predict_refuses_empty_input_and_bad_batch():
    # catches: an empty input returning garbage from np.concatenate, batch_size 0 looping forever
    model = _tiny()
    with pytest.raises(ValueError, match="at least one"):
        forward.predict(model, np.zeros((0, 12, 12, 1), np.float32))
    with pytest.raises(ValueError, match="batch_size expects >= 1, got 0"):
        forward.predict(model, np.zeros((2, 12, 12, 1), np.float32), batch_size=0)

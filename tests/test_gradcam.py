import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import zoom

from xaikit.gradcam import GradcamExplainer, gradcam, normalize_maps


def small_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((24, 24, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", padding="same", name="conv_a")(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", padding="same", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(2, name="logits")(x)
    return keras.Model(inp, keras.layers.Activation("softmax", name="probs")(logits))


def reference_gradcam(model, images, target, layer="last_conv"):
    """Grad-CAM from its definition, independent of tf-keras-vis."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer("logits").output])
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        feats, logits = probe(x)
        score = tf.gather(logits, target, axis=1, batch_dims=1)
    grads = tape.gradient(score, feats).numpy()
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((feats.numpy() * weights).sum(-1), 0)
    factor = (images.shape[1] / cam.shape[1], images.shape[2] / cam.shape[2])
    up = np.stack([zoom(c, factor, order=1) for c in cam])
    return normalize_maps(up)


def test_matches_definition():
    model = small_cnn()
    x = np.random.default_rng(0).uniform(size=(5, 24, 24, 1)).astype(np.float32)
    target = np.array([0, 1, 1, 0, 1])
    ours = GradcamExplainer(model)(x, target)
    ref = reference_gradcam(model, x, target)
    assert ours.shape == (5, 24, 24)
    assert ours.min() >= 0 and ours.max() <= 1
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def halves_model():
    """Class 0 reads positive pixels, class 1 negative ones; images put them in different halves."""
    inp = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 1, activation="relu", name="last_conv")
    x = conv(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, name="logits")
    logits = dense(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="probs")(logits))
    conv.set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2), np.zeros(2, np.float32)])
    dense.set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    return model


def test_targets_explain_their_own_half():
    model = halves_model()
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, :, :4] = 1.0      # left half drives class 0
    x[0, :, 4:] = -1.0     # right half drives class 1
    explainer = GradcamExplainer(model)
    m0, m1 = explainer(x, 0)[0], explainer(x, 1)[0]
    assert m0[:, :4].sum() / m0.sum() > 0.9
    assert m1[:, 4:].sum() / m1.sum() > 0.9


def test_flat_map_is_zero_not_nan():
    model = halves_model()
    x = np.ones((2, 8, 8, 1), np.float32)        # class 1's channel is silent everywhere
    maps = gradcam(model, x, 1)
    assert np.all(np.isfinite(maps)) and maps.max() == 0


def test_wrong_layer_is_named():
    with pytest.raises(ValueError, match="layer 'nope' not found.*conv_a"):
        GradcamExplainer(small_cnn(), "nope")


def test_caller_model_is_not_modified():
    model = small_cnn()
    x = np.random.default_rng(1).uniform(size=(2, 24, 24, 1)).astype(np.float32)
    before = model.predict(x, verbose=0)
    GradcamExplainer(model)(x, 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), before)
    assert model.get_layer("probs").activation.__name__ == "softmax"

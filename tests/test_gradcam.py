import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import zoom

from xaikit.regions import upsample

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


def reference_gradcam(model, images, target, layer="last_conv", score="margin"):
    """Grad-CAM from its definition, independent of tf-keras-vis."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer("logits").output])
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        feats, logits = probe(x)
        score = (tf.gather(logits, target, axis=1, batch_dims=1) -
                 (tf.gather(logits, 1 - target, axis=1, batch_dims=1) if score == "margin" else 0.0))
    grads = tape.gradient(score, feats).numpy()
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((feats.numpy() * weights).sum(-1), 0)
    # half-pixel (centre-aligned) bilinear with clamped edges, as TF2's resize does it
    up = tf.image.resize(cam[..., None], images.shape[1:3], method="bilinear").numpy()[..., 0]
    peak = up.reshape(len(up), -1).max(1)                  # own normalisation, not the implementation's
    return up / np.where(peak > 0, peak, 1.0)[:, None, None]


@pytest.mark.parametrize("layer,score", [("last_conv", "margin"), ("last_conv", "logit"),
                                         ("conv_a", "margin")])
def test_matches_definition(layer, score):
    """Catches: a wrong score (logit vs margin), a layer argument that is ignored, no ReLU."""
    model = small_cnn()
    x = np.random.default_rng(0).uniform(size=(5, 24, 24, 1)).astype(np.float32)
    target = np.array([0, 1, 1, 0, 1])
    ours = GradcamExplainer(model, layer, score)(x, target)
    ref = reference_gradcam(model, x, target, layer, score)
    assert ours.shape == (5, 24, 24)
    assert ours.min() >= 0 and ours.max() <= 1
    assert ref.max() > 0                       # the comparison is not between two empty maps
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def shared_evidence_model():
    """Both logits read the same channel (z0 = 2f, z1 = f): the evidence raises z1 but favours class 0."""
    inp = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="last_conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(inp))
    dense = keras.layers.Dense(2, name="logits")
    model = keras.Model(inp, keras.layers.Activation("softmax", name="probs")(dense(x)))
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    dense.set_weights([np.array([[2.0, 1.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_margin_explains_the_decision_not_the_logit():
    """Catches: the margin score computing z_target alone (or z_other - z_target)."""
    model = shared_evidence_model()
    x = np.zeros((1, 8, 8, 1), np.float32)
    x[0, 2:5, 2:5] = 1.0
    assert gradcam(model, x, 1, score="logit").max() > 0       # raises z1 ...
    assert gradcam(model, x, 1, score="margin").max() == 0     # ... but speaks against class 1
    assert gradcam(model, x, 0, score="margin").max() > 0


def test_unknown_score_is_named():
    with pytest.raises(ValueError, match="score expects one of"):
        GradcamExplainer(small_cnn(), score="probability")


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


def test_normalize_maps_values():
    """Catches: scaling by the sum or the mean, or negatives kept (the ReLU of Grad-CAM)."""
    m = np.array([[[-1.0, 2.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    np.testing.assert_allclose(normalize_maps(m), [[[0, 0.5], [0.25, 1]], [[0, 0], [0, 0]]])


def test_named_conv_that_feeds_batchnorm():
    """A Conv2D followed by BatchNorm (the tf-keras-vis pitfall in the module docstring): the map
    at the named layer still equals its definition. Catches: letting tf-keras-vis seek the
    penultimate layer itself (seek_penultimate_conv_layer=True), which gave all-zero maps."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="last_conv")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="probs")(logits))
    x = np.random.default_rng(3).uniform(size=(3, 16, 16, 1)).astype(np.float32)
    ours = GradcamExplainer(model, "last_conv")(x, [0, 1, 0])
    ref = reference_gradcam(model, x, np.array([0, 1, 0]))
    assert ref.max() > 0
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_upsampling_is_centre_aligned():
    """Catches: a corner-aligned zoom (tf-keras-vis's expand_cam, scipy zoom), which puts the centre of
    cell 2 of 8 at pixel 18 of 64 instead of the centre of its block, 19.5; and extrapolation or
    reflection at the border, which would not keep a constant map constant."""
    one = np.zeros((1, 8, 8))
    one[0, 2, 5] = 1.0
    up = upsample(one, (64, 64))[0]
    rows, cols = np.mgrid[0:64, 0:64]
    assert (up * rows).sum() / up.sum() == pytest.approx(2 * 8 + 3.5)
    assert (up * cols).sum() / up.sum() == pytest.approx(5 * 8 + 3.5)
    assert up.sum() == pytest.approx(64)                # an interior cell keeps its mass (8 x 8 pixels)
    zoomed = zoom(one[0], 8, order=1)                   # the corner-aligned resize misses the block centre
    assert (zoomed * rows).sum() / zoomed.sum() == pytest.approx(18, abs=0.01)
    np.testing.assert_allclose(upsample(np.full((2, 8, 8), 0.7), (64, 48)), 0.7)
    edge = np.zeros((1, 4, 4))
    edge[0, :, 0] = 1.0                                 # held out to the border: the outer block stays 1
    np.testing.assert_allclose(upsample(edge, (32, 32))[0][:, :4], 1.0)
    with pytest.raises(ValueError, match="N x h x w"):
        upsample(np.zeros((8, 8)), (64, 64))


def test_set_weights_explains_the_other_model():
    # catches: set_weights that leaves the explainer's clone on its old weights (Q5.4 reuses one
    # explainer for every cascade step), or that writes the caller's model instead
    a, b = small_cnn(seed=0), small_cnn(seed=1)
    x = np.random.default_rng(0).random((3, 24, 24, 1)).astype(np.float32)
    explainer = GradcamExplainer(a, "last_conv")
    own = explainer(x, 1)
    explainer.set_weights(b.get_weights())
    np.testing.assert_allclose(explainer(x, 1), GradcamExplainer(b, "last_conv")(x, 1), atol=1e-6)
    assert not np.allclose(explainer(x, 1), own)
    np.testing.assert_allclose(GradcamExplainer(a, "last_conv")(x, 1), own, atol=1e-6)

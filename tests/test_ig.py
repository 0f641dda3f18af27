import keras
import numpy as np
import pytest

from xaikit import baselines as xb
from xaikit.ig import (PathGradients, integrated_gradients, integrated_gradients_adaptive,
                       integrated_gradients_expected, quadrature)


def linear_model(shape, seed=0):
    rng = np.random.default_rng(seed)
    inp = keras.Input(shape)
    out = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    w = rng.normal(size=(int(np.prod(shape)), 2)).astype(np.float32)
    model.get_layer("logits").set_weights([w, np.array([0.3, -0.2], np.float32)])
    return model, w


def small_cnn(shape=(16, 16, 1), seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", padding="same")(inp)
    x = keras.layers.Conv2D(4, 3, activation="tanh", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("steps, method", [(1, "trapezoid"), (7, "trapezoid"), (3, "gauss_legendre"),
                                           (5, "riemann_left")])
def test_linear_model_oracle(steps, method):
    shape = (6, 5, 1)
    model, w = linear_model(shape)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3,) + shape).astype(np.float32)
    b = rng.uniform(size=shape).astype(np.float32)
    res = integrated_gradients(model, x, b, target=[0, 1, 1], steps=steps, batch_size=4, method=method)
    for i, t in enumerate([0, 1, 1]):
        expected = w[:, t].reshape(shape) * (x[i] - b)
        np.testing.assert_allclose(res.attributions[i], expected, rtol=1e-4, atol=1e-5)
    assert res.attributions.dtype == np.float32
    assert np.all(res.gap < 1e-3)


def test_completeness_on_nonlinear_cnn():
    model = small_cnn()
    x = np.random.default_rng(2).uniform(size=(4, 16, 16, 1)).astype(np.float32)
    res = integrated_gradients(model, x, xb.black(x), target=1, steps=64, batch_size=50)
    assert np.all(res.gap < 0.01), res.gap
    delta = res.f_image - res.f_baseline
    np.testing.assert_allclose(res.attributions.reshape(4, -1).sum(1), delta, rtol=0.01, atol=1e-4)


def test_batching_does_not_change_result():
    model = small_cnn()
    x = np.random.default_rng(3).uniform(size=(3, 16, 16, 1)).astype(np.float32)
    a = integrated_gradients(model, x, 0 * x, target=0, steps=16, batch_size=1).attributions
    b = integrated_gradients(model, x, 0 * x, target=0, steps=16, batch_size=1000).attributions
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_adaptive_reduces_gap():
    model = small_cnn()
    x = np.random.default_rng(4).uniform(size=(2, 16, 16, 1)).astype(np.float32)
    coarse = integrated_gradients(model, x, 0 * x, target=1, steps=2)
    fine = integrated_gradients_adaptive(model, x, 0 * x, target=1, steps=2, tolerance=0.002, max_steps=256)
    assert fine.gap.max() <= coarse.gap.max()
    assert fine.steps > 2


def test_expected_ig_over_noise_baselines():
    model, w = linear_model((4, 4, 1))
    x = np.random.default_rng(5).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    noise = xb.uniform_noise(x, 3, seed=0)
    res = integrated_gradients_expected(model, x, noise, target=0, steps=4)
    expected = w[:, 0].reshape(4, 4, 1) * (x - noise.mean(0))
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-4, atol=1e-5)
    # its reported gap is that of the averaged map against the averaged baseline score (a
    # linear model: about 0); catches a gap scaled by |delta| instead of divided by it
    f_b = np.mean([x_ @ w[:, 0] for x_ in noise.reshape(3, 2, -1)], axis=0) + 0.3
    np.testing.assert_allclose(res.f_baseline, f_b, rtol=1e-4)
    assert np.all(res.gap < 1e-4)
    cnn = small_cnn((4, 4, 1))                 # nonlinear: a real gap at 2 steps
    coarse = integrated_gradients_expected(cnn, x, noise, target=0, steps=2)
    delta = coarse.f_image - coarse.f_baseline
    gap = np.abs(coarse.attributions.reshape(2, -1).sum(1) - delta) / np.abs(delta)
    assert gap.max() > 1e-3 and np.all(np.abs(np.abs(delta) - 1) > 1e-2)
    np.testing.assert_allclose(coarse.gap, gap, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(images=np.zeros((2, 4, 4, 1), np.uint8)), "float dtype"),
    (dict(images=np.zeros((4, 4, 1), np.float32)), "4-D array"),
    (dict(baseline=np.zeros((3, 3, 1), np.float32)), "baseline expects shape"),
    (dict(steps=0), "steps expects"),
])
def test_input_validation(kwargs, fragment):
    model, _ = linear_model((4, 4, 1))
    args = dict(images=np.zeros((2, 4, 4, 1), np.float32), baseline=np.zeros((4, 4, 1), np.float32),
                target=0, steps=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        integrated_gradients(model, **args)


def test_quadrature_weights_sum_to_one():
    for m in ("trapezoid", "riemann_left", "gauss_legendre"):
        a, w = quadrature(9, m)
        assert abs(w.sum() - 1) < 1e-6 and a.min() >= 0 and a.max() <= 1


def test_baselines_shapes_and_seeds():
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    assert xb.black(x).shape == x.shape and xb.white(x).max() == 1
    assert xb.blurred(x, 2.0).std() < x.std()
    # each image is blurred on its own (catches a blur across the stack or the channels)
    np.testing.assert_allclose(xb.blurred(x, 2.0)[1], xb.blurred(x[1:], 2.0)[0], atol=1e-6)
    x3 = np.random.default_rng(1).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(xb.blurred(x3, 2.0)[..., 2], xb.blurred(x3[..., 2:], 2.0)[..., 0], atol=1e-6)
    n1, n2 = xb.uniform_noise(x, 3, seed=1), xb.uniform_noise(x, 3, seed=1)
    assert n1.shape == (3,) + x.shape and np.array_equal(n1, n2)
    assert not np.array_equal(n1, xb.uniform_noise(x, 3, seed=2))
    assert xb.train_mean(x, x.mean(0)).shape == x.shape
    assert n1.min() >= 0 and n1.max() <= 1 and abs(n1.mean() - 0.5) < 0.1     # uniform on [0, 1]
    with pytest.raises(ValueError, match="draws expects >= 1, got 0"):
        xb.uniform_noise(x, 0, seed=1)
    with pytest.raises(ValueError, match=r"mean_image expects shape \(8, 8, 1\), got \(4, 4, 1\)"):
        xb.train_mean(x, np.zeros((4, 4, 1)))


def test_agrees_with_pair_saliency():
    saliency = pytest.importorskip("saliency.core")
    import tensorflow as tf
    model = small_cnn(seed=3)
    x = np.random.default_rng(6).uniform(size=(16, 16, 1)).astype(np.float32)

    def call_model(images, call_model_args=None, expected_keys=None):
        images = tf.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            tape.watch(images)
            out = model(images)[:, 1]
        return {saliency.INPUT_OUTPUT_GRADIENTS: tape.gradient(out, images).numpy()}

    ref = saliency.IntegratedGradients().GetMask(x, call_model, x_steps=64,
                                                 x_baseline=np.zeros_like(x), batch_size=16)
    ours = integrated_gradients(model, x[None], np.zeros_like(x), target=1, steps=64).attributions[0]
    assert np.corrcoef(ref.ravel(), ours.ravel())[0, 1] >= 0.99


def test_margin_model_oracle():
    """IG of the margin of a linear model is (w_t - w_other) * (x - b).
    Catches: a margin layer with the wrong sign or one that returns z_target alone."""
    from xaikit.scores import margin_model
    shape = (4, 3, 1)
    model, w = linear_model(shape, seed=3)
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(2,) + shape).astype(np.float32)
    b = np.zeros(shape, np.float32)
    res = integrated_gradients(margin_model(model), x, b, target=[0, 1], steps=2)
    for i, t in enumerate([0, 1]):
        expected = (w[:, t] - w[:, 1 - t]).reshape(shape) * (x[i] - b)
        np.testing.assert_allclose(res.attributions[i], expected, rtol=1e-4, atol=1e-5)
    # the margin model shares the weights: it follows the logits model
    z = model.predict(x, verbose=0)
    np.testing.assert_allclose(margin_model(model).predict(x, verbose=0)[:, 1], z[:, 1] - z[:, 0], rtol=1e-5)


def test_margin_model_refuses_more_than_two_logits():
    from xaikit.scores import margin_model
    inp = keras.Input((3,))
    with pytest.raises(ValueError, match="2 logits, got 3"):
        margin_model(keras.Model(inp, keras.layers.Dense(3)(inp)))


def previous_integrated_gradients(model, x, b, target, steps, batch_size, method):
    """The implementation before issue 23 (np.add.at on the host, F by model.predict): the
    reference the compiled accumulation must match to float rounding."""
    import tensorflow as tf
    alphas, weights = quadrature(steps, method)
    n, k = len(x), len(alphas)
    total = np.zeros_like(x)
    pair_image, pair_step = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    for start in range(0, n * k, batch_size):
        img, stp = pair_image[start:start + batch_size], pair_step[start:start + batch_size]
        path = tf.constant(b[img] + alphas[stp][:, None, None, None] * (x[img] - b[img]))
        with tf.GradientTape() as tape:
            tape.watch(path)
            chosen = tf.gather(model(path, training=False), target[img], axis=1, batch_dims=1)
        np.add.at(total, img, tape.gradient(chosen, path).numpy() * weights[stp][:, None, None, None])
    attributions = (x - b) * total
    rows = np.arange(n)
    f_x = model.predict(x, verbose=0)[rows, target]
    f_b = model.predict(b, verbose=0)[rows, target]
    delta = f_x - f_b
    return attributions, np.abs(attributions.reshape(n, -1).sum(1) - delta) / np.abs(delta), f_x, f_b


@pytest.mark.parametrize("steps, batch_size, method", [(16, 7, "trapezoid"), (9, 100, "trapezoid"),
                                                       (8, 5, "gauss_legendre"), (6, 1, "riemann_left")])
def test_maps_equal_the_previous_implementation(steps, batch_size, method):
    """Catches: a batch that straddles two images summed into one, weights applied to the
    wrong node, F(x) or F(b) taken from the wrong end of the path."""
    model = small_cnn(seed=4)
    rng = np.random.default_rng(7)
    x = rng.uniform(size=(3, 16, 16, 1)).astype(np.float32)
    b = rng.uniform(size=(3, 16, 16, 1)).astype(np.float32)
    target = np.array([0, 1, 1])
    res = integrated_gradients(model, x, b, target, steps=steps, batch_size=batch_size, method=method)
    attr, gap, f_x, f_b = previous_integrated_gradients(model, x, b, target, steps, batch_size, method)
    scale = np.abs(attr).max()
    np.testing.assert_allclose(res.attributions, attr, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(res.f_image, f_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.f_baseline, f_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.gap, gap, rtol=1e-3, atol=1e-5)


def test_held_path_gradients_trace_once():
    """Catches: a graph traced again for each call, each batch size (the last, partial batch)
    or each step count: a held PathGradients traces once per image shape."""
    model = small_cnn(seed=5)
    x = np.random.default_rng(8).uniform(size=(3, 16, 16, 1)).astype(np.float32)
    held = PathGradients(model)
    first = integrated_gradients(held, x, 0 * x, target=1, steps=8, batch_size=5)
    assert held.traces == 1
    again = integrated_gradients(held, x[:2], 0 * x[:2], target=[0, 1], steps=16, batch_size=7)
    integrated_gradients_adaptive(held, x, 0 * x, target=1, steps=2, tolerance=1e-4, max_steps=16)
    integrated_gradients_expected(held, x, xb.uniform_noise(x, 2, seed=0), target=0, steps=4)
    assert held.traces == 1
    # the held object gives the same maps as a model passed directly
    np.testing.assert_array_equal(again.attributions,
                                  integrated_gradients(model, x[:2], 0 * x[:2], target=[0, 1], steps=16,
                                                       batch_size=7).attributions)
    assert first.attributions.shape == x.shape
    integrated_gradients(held, x, 0 * x, target=1, steps=3, method="gauss_legendre")
    assert held.traces == 2          # the forward-only scores: F(x) is no node of Gauss-Legendre
    integrated_gradients(held, x[:1], 0 * x[:1], target=1, steps=5, method="gauss_legendre")
    assert held.traces == 2

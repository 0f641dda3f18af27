import keras
import numpy as np
import pytest

from xaikit.gradcam import GradcamExplainer
from xaikit.metrics import binary_metrics, youden_threshold
from xaikit.model import LAST_CONV, build_cnn, logits_model
from xaikit.pipeline import AugmentParams, augment_batch, make_dataset
from xaikit.train import TrainSettings, class_weight_vector, predict_probs, train_classifier

from .conftest import chest_like


def synthetic(n=64, size=32, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.stack([chest_like(rng, size, bool(v)) for v in y])
    return x, y


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3), (96, 1)])
def test_builds(size, channels):
    model = build_cnn(size, channels, seed=0)
    out = model.predict(np.zeros((2, size, size, channels), np.float32), verbose=0)
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)
    assert model.get_layer(LAST_CONV) is not None
    assert logits_model(model).output.shape[-1] == 2


def test_save_load_safe_mode(tmp_path):
    model = build_cnn(32, 1, seed=1)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_training_learns_and_is_seeded():
    x, y = synthetic(96)
    xv, yv = synthetic(32, seed=1)
    settings = TrainSettings(epochs=8, batch_size=16, learning_rate=1e-3, warmup_epochs=1, seed=3,
                             augment=AugmentParams(rotation_deg=5, zoom=0.05, shift=0.05, gamma=0.1,
                                                   blur_mix=0.2))
    runs = []
    for _ in range(2):
        model = build_cnn(32, 1, dropout=0.0, seed=3)
        res = train_classifier(model, x, y, xv, yv, settings, verbose=False)
        runs.append((res, predict_probs(model, xv)))
    acc = np.mean((runs[0][1] >= 0.5) == (yv == 1))
    assert acc >= 0.9, acc
    assert runs[0][0].history["loss"] == runs[1][0].history["loss"]
    np.testing.assert_allclose(runs[0][1], runs[1][1], atol=1e-6)
    assert 1 <= runs[0][0].best_epoch <= 8
    # a trained model gives non-flat Grad-CAM maps at the default layer (measured pitfall: all zeros)
    cams = GradcamExplainer(model)(x[:8].astype(np.float32)[..., None] / 255, (runs[1][1][:8] >= 0.5).astype(int))
    assert np.all(cams.reshape(8, -1).max(1) > 0)


def test_memorises_permuted_labels():
    x, y = synthetic(48, 32, seed=4)
    permuted = np.random.default_rng(0).permutation(y)
    settings = TrainSettings(epochs=60, batch_size=16, learning_rate=3e-3, label_smoothing=0.0,
                             class_weights="none", schedule="constant", select="last",
                             stop_at_train_accuracy=0.95, seed=0)
    model = build_cnn(32, 1, dropout=0.0, seed=0)
    res = train_classifier(model, x, permuted, None, None, settings, verbose=False)
    assert res.train_accuracy >= 0.95, res
    assert res.epochs_run < 60 and "reached" in res.stopped


def test_class_weights():
    w = class_weight_vector(np.array([0, 1, 1, 1]), "balanced")
    assert w[0] == pytest.approx(2.0) and w[1] == pytest.approx(2 / 3)
    assert w[0] * 1 == pytest.approx(w[1:].sum())
    with pytest.raises(ValueError, match="both classes"):
        class_weight_vector(np.array([1, 1]), "balanced")


def test_pipeline_shapes_shuffle_and_augment():
    x, y = synthetic(20, 32)
    ds = make_dataset(x, y, batch_size=8, training=True, seed=1,
                      augment=AugmentParams())
    e1 = np.concatenate([b[1].numpy() for b in ds])
    e2 = np.concatenate([b[1].numpy() for b in ds])
    batch = next(iter(ds))[0].numpy()
    assert batch.shape == (8, 32, 32, 1) and batch.min() >= 0 and batch.max() <= 1
    assert len(e1) == 20 and sorted(e1) == sorted(e2) == sorted(y)   # every example once per epoch
    # (that the order changes between epochs is test_reshuffled_each_epoch's, with distinct ids)
    plain = np.concatenate([b[0].numpy() for b in make_dataset(x, y, batch_size=8)])
    assert np.allclose(plain[..., 0], x / 255.0)
    import tensorflow as tf
    seed = tf.constant([4, 2], tf.int64)
    img = tf.constant(plain[:4])
    a1 = augment_batch(img, seed, AugmentParams()).numpy()
    a2 = augment_batch(img, seed, AugmentParams()).numpy()
    np.testing.assert_allclose(a1, a2)
    assert np.abs(a1 - plain[:4]).mean() > 0.01


def test_reshuffled_each_epoch():
    x = np.zeros((64, 32, 32), np.uint8)
    y = np.arange(64)
    ds = make_dataset(x, y, batch_size=64, training=True, seed=0)
    orders = [next(iter(ds))[1].numpy().tolist() for _ in range(3)]
    assert orders[0] != orders[1] != orders[2]


def test_metrics_and_validation_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.55, 0.6, 0.8, 0.9])
    m = binary_metrics(y, p, 0.5)
    assert (m.tn, m.fp, m.fn, m.tp) == (2, 1, 0, 3)
    assert m.specificity == pytest.approx(2 / 3) and m.sensitivity == 1.0
    t = youden_threshold(y, p)

    def j(th):
        mm = binary_metrics(y, p, th)
        return mm.sensitivity + mm.specificity - 1

    assert all(j(t) >= j(th) - 1e-12 for th in p) and t == pytest.approx(0.6) and j(t) > j(0.5)
    # ties and ordering: the threshold is one of the observed scores, not a midpoint
    assert t in p
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold(np.ones(3), np.ones(3))


def test_distribution_strategy_code_path():
    """The --strategy path (build and compile inside a tf.distribute scope) on one CPU device."""
    from report.context import make_strategy
    x, y = synthetic(32, 32)
    strategy = make_strategy("one-device")
    with strategy.scope():
        model = build_cnn(32, 1, dropout=0.0, seed=0)
    settings = TrainSettings(epochs=2, batch_size=16, warmup_epochs=0, seed=0)
    res = train_classifier(model, x, y, x, y, settings, verbose=False, strategy=strategy)
    assert res.epochs_run == 2 and np.isfinite(res.history["loss"]).all()
    mirrored = make_strategy("mirrored")            # all GPUs; on a CPU-only machine, the CPU
    with mirrored.scope():
        model = build_cnn(32, 1, dropout=0.0, seed=0)
    res = train_classifier(model, x, y, None, None, TrainSettings(epochs=1, batch_size=16, seed=0),
                           verbose=False, strategy=mirrored)
    assert res.epochs_run == 1 and np.isfinite(res.history["loss"]).all()
    assert make_strategy("default") is None
    from xaikit.errors import XaikitError
    with pytest.raises(XaikitError, match="strategy expects"):
        make_strategy("quantum")

"""Cached models are trusted only when their key matches and they load in Keras safe mode."""

import json

import keras
import numpy as np

from report import models
from report.build import make_context
from xaikit.model import build_cnn

from .conftest import make_dataset


def context(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    return make_context(str(root), None, ["data.image_size=32"], None, tmp_path / "build")


def write(ctx, model, key):
    model_path, card_path = models.paths(ctx, "main")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    card_path.write_text(json.dumps({"key": key, "epochs_run": 1}))


def test_fresh_model_round_trip(tmp_path):
    ctx = context(tmp_path)
    model = build_cnn(32, 1, seed=0)
    write(ctx, model, models.key(ctx, "main"))
    loaded, card = models.load_cached(ctx, "main")
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert card["epochs_run"] == 1


def test_stale_key_is_not_trusted(tmp_path):
    ctx = context(tmp_path)
    write(ctx, build_cnn(32, 1, seed=0), "some-other-key")
    assert models.load_cached(ctx, "main") is None


def test_lambda_layer_is_refused_with_a_clear_message(tmp_path, capfd):
    ctx = context(tmp_path)
    inp = keras.Input((32, 32, 1))
    out = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    evil = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(out)))
    write(ctx, evil, models.key(ctx, "main"))
    assert models.load_cached(ctx, "main") is None
    err = capfd.readouterr().err
    assert "Lambda layer" in err and "training again" in err


def test_random_label_permutation(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 30, "test": 2})
    ctx = make_context(str(root), None, ["data.image_size=32", "random_labels.subset_size=40"], None,
                       tmp_path / "build")
    sub, y, permuted = models.random_subset(ctx)
    assert len(sub) == 40 and np.bincount(y).tolist() == np.bincount(permuted).tolist()   # same class counts
    assert np.mean(permuted != y) > 0.3          # far from the identity
    sub2, _, permuted2 = models.random_subset(ctx)
    assert np.array_equal(sub, sub2) and np.array_equal(permuted, permuted2)   # seeded
    other = make_context(str(root), None, ["data.image_size=32", "random_labels.subset_size=40",
                                           "random_labels.permutation_seed=5"], None, tmp_path / "build")
    assert not np.array_equal(models.random_subset(other)[2], permuted)


def test_each_pair_has_its_own_subset_and_the_whole_split_arm_uses_all_training_images(tmp_path):
    # catches: every seed drawing the same subset (the pairs would not be independent replicates),
    # or the whole-split arm trained on a subset
    root = make_dataset(tmp_path / "d", per_class={"train": 30, "test": 2})
    ctx = make_context(str(root), None, ["data.image_size=32", "random_labels.subset_size=20"], None,
                       tmp_path / "build")
    subsets = [models.random_subset(ctx, i)[0] for i in (1, 2, 3)]
    assert all(len(s) == 20 for s in subsets)
    assert not np.array_equal(subsets[0], subsets[1]) and not np.array_equal(subsets[1], subsets[2])
    whole, y, permuted = models.random_subset(ctx, 0)
    train = ctx.prepared().idx("train")
    assert np.array_equal(np.sort(whole), np.sort(train)) and len(whole) > 20
    assert np.bincount(y).tolist() == np.bincount(permuted).tolist() and np.mean(permuted != y) > 0.3
    assert "random-all" in models.names(ctx) and models.parse(ctx, "control-all") == ("control", 0)
    # control-i's key follows random-i's (its epoch count comes from it), not another seed's
    assert models.key(ctx, "control-all") != models.key(ctx, "control-1")
    # the whole split's second control: same images as control-all, its own seed, and it trains from random-all
    # (catches: control-all-2 read as a subset seed, trained from a missing "random-all-2", or sharing control-all's key)
    assert models.parse(ctx, "control-all-2") == ("control", -1) and models.upstream("control-all-2") == "random-all"
    assert np.array_equal(models.random_subset(ctx, -1)[0], whole)
    assert len({models.key(ctx, n) for n in ("control-all", "control-all-2", "control-1")}) == 3
    assert models.names(ctx)[-2:] == ("control-all", "control-all-2")

"""The main model's explained sample (report.explained): Q3's test images explained at the main model's
decision, made once per build from the map store, with the null maps every section compares against."""

from types import SimpleNamespace

import numpy as np
import pytest

from report import explained, maps, models
from report.context import Prepared
from report.preflight import read_config
from xaikit.model import build_cnn
from xaikit.pipeline import to_float
from xaikit.train import predict_probs


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 12                                    # 3 per split and class, test/ first
    split = np.array(["test"] * 6 + ["train"] * 6)
    labels = np.array([0, 0, 0, 1, 1, 1] * 2)
    names = np.array([f"{s}/{'NORMAL' if y == 0 else 'PNEUMONIA'}/person{i}_x_{i}.jpeg"
                      for i, (s, y) in enumerate(zip(split, labels))])
    images = rng.integers(0, 255, (n, 32, 32), dtype=np.uint8)
    prepared = Prepared(images, labels, split, split, names, np.full(n, 32), np.full(n, 32), ())
    main, other = build_cnn(32, 1, seed=0), build_cnn(32, 1, seed=1)
    probs = predict_probs(main, to_float(images[:6]))
    thr = float(np.median(probs))             # a threshold that splits the sample's decisions
    zoo = {"main": (main, {"val_threshold": thr}), "main-2": (other, {"val_threshold": 0.0})}
    monkeypatch.setattr(models, "key", lambda ctx, name: f"key-{name}")
    cfg = read_config(None, ["attribution.ig_steps=4", "attribution.ig_max_steps=4", "attribution.eval_per_class=3",
                             "attribution.samples_per_class=2", "attribution.ig_baseline=black"], "quick")
    return SimpleNamespace(cfg=cfg, build=tmp_path, data_key="data", prepared=lambda: prepared,
                           model=lambda name: zoo[name])


def test_the_sample_is_explained_at_the_main_models_decision_once_per_build(ctx):
    # catches: explaining the true label instead of the decision, a threshold other than the model's validation
    # threshold, train images in the sample, IG that is not the store's, or the sample made again per section
    e = explained.main(ctx)
    assert explained.main(ctx) is e
    p = ctx.prepared()
    assert set(p.split[np.isin(p.names, e.names)]) == {"test"} and len(e.x) == 6
    np.testing.assert_array_equal(e.y, p.labels[[list(p.names).index(nm) for nm in e.names]])
    model, card = ctx.model("main")
    np.testing.assert_array_equal(e.target, (predict_probs(model, e.x) >= card["val_threshold"]).astype(int))
    assert 0 < e.target.sum() < len(e.target) and e.threshold == card["val_threshold"]
    assert e.ig is maps.get(ctx, "main", "ig", "black", e.x, e.target)
    np.testing.assert_allclose(e.nulls["input"], np.abs(e.x[..., 0]))       # |x - black baseline|
    assert e.nulls["random"].shape == e.nulls["input"].shape and e.masks.shape == e.x.shape[:3]


def test_a_seed_is_explained_at_its_own_decision(ctx):
    # catches: a seed explained at the main model's targets or threshold, or with another baseline than the main one
    xs = explained.main(ctx).x[:4]
    attr, target = explained.seed_ig(ctx, "main-2", *ctx.model("main-2"), xs)
    np.testing.assert_array_equal(target, np.ones(4, int))        # threshold 0: every image called PNEUMONIA
    np.testing.assert_array_equal(attr, maps.get(ctx, "main-2", "ig", "black", xs, target).maps)

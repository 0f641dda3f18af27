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
def ctx(tmp_path, monkeypatch, request):
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
    thr = float(np.sort(probs)[3])            # one image's own P(PNEUMONIA): it is called PNEUMONIA (>=)
    seed_thr = float(np.sort(predict_probs(other, to_float(images[:6])))[2])
    zoo = {"main": (main, {"val_threshold": thr}), "main-2": (other, {"val_threshold": seed_thr})}
    monkeypatch.setattr(models, "key", lambda ctx, name: f"key-{name}")
    cfg = read_config(None, ["attribution.ig_steps=4", "attribution.ig_max_steps=4", "attribution.eval_per_class=3",
                             "attribution.samples_per_class=2", "attribution.ig_baseline=white",
                             *getattr(request, "param", ())], "quick")
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
    assert e.target.sum() == 3 and e.threshold == card["val_threshold"]    # the image at the threshold is PNEUMONIA
    assert e.ig is maps.get(ctx, "main", "ig", "white", e.x, e.target)
    np.testing.assert_allclose(e.nulls["input"], np.abs(e.x[..., 0] - 1))   # |x - white baseline|
    assert e.nulls["random"].shape == e.nulls["input"].shape and e.masks.shape == e.x.shape[:3]
    assert np.all(e.nulls["random"].reshape(len(e.x), -1).std(1) > 0)     # drawn per pixel, not one value per map


@pytest.mark.parametrize("ctx", [("attribution.ig_baseline=noise", "attribution.noise_draws=3")], indirect=True)
def test_the_input_alone_against_noise_is_against_the_mean_draw(ctx):
    # catches: the input-alone null of a noise baseline taken against one draw, or against their sum
    e = explained.main(ctx)
    b = maps.baseline_images("noise", e.x, ctx)
    np.testing.assert_allclose(e.nulls["input"], np.abs((e.x - b.mean(0))[..., 0]), rtol=1e-6)


def test_a_seed_is_explained_at_its_own_decision(ctx):
    # catches: a seed explained at the main model's targets or threshold, or with another baseline than the main one
    xs = explained.main(ctx).x
    attr, target = explained.seed_ig(ctx, "main-2", *ctx.model("main-2"), xs)
    assert target.sum() == 4      # the seed's threshold is its third-lowest P(PNEUMONIA): four images reach it (>=)
    np.testing.assert_array_equal(attr, maps.get(ctx, "main-2", "ig", "white", xs, target).maps)

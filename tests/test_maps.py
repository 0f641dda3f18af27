"""The map store (report.maps): each model's IG graph is traced once for the build."""

from types import SimpleNamespace

import numpy as np

from report import maps
from report.preflight import read_config
from xaikit.ig import integrated_gradients
from xaikit.model import build_cnn


def test_each_model_is_traced_once_and_gives_the_maps_of_a_fresh_trace():
    # catches: a new IG graph per call (the quick build traced about 40 times, most of Q3 and Q5.4's
    # cost), one graph shared by two models (the second model explained with the first's weights), or
    # a held graph that explains another score than the margin model
    ctx = SimpleNamespace(cfg=read_config(None, ["attribution.ig_steps=4"], "quick"))
    a, b = build_cnn(32, 1, seed=0), build_cnn(32, 1, seed=1)
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype(np.float32)
    target = np.array([0, 1, 1])
    first = maps.explain_ig(ctx, a, x, target, "black", adaptive=False)
    again = maps.explain_ig(ctx, a, x[:2], target[:2], "white", adaptive=False)
    other = maps.explain_ig(ctx, b, x, target, "black", adaptive=False)
    assert maps.ig_boundary(ctx, a) is maps.ig_boundary(ctx, a)
    assert maps.ig_boundary(ctx, a) is not maps.ig_boundary(ctx, b)
    assert maps.ig_boundary(ctx, a).traces == 1 and maps.ig_boundary(ctx, b).traces == 1
    fresh = integrated_gradients(maps.explained_model(a), x, np.zeros_like(x), target, steps=4,
                                 batch_size=ctx.cfg["attribution.ig_batch_size"])
    np.testing.assert_array_equal(first.attributions, fresh.attributions)
    np.testing.assert_array_equal(again.attributions,
                                  integrated_gradients(maps.explained_model(a), x[:2], np.ones_like(x[:2]), target[:2],
                                                       steps=4, batch_size=ctx.cfg["attribution.ig_batch_size"]).attributions)
    assert not np.allclose(other.attributions, first.attributions)

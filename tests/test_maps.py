"""The map store (report.maps): each map set computed once and kept under its content key; each model's IG
graph traced once for the build."""

from types import SimpleNamespace

import numpy as np
import pytest

from report import maps, models
from report.preflight import read_config
from xaikit.gradcam import GradcamExplainer
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


def _store_ctx(tmp_path, model_keys: dict, overrides=()):
    """A build context for the map store: models by name, their keys, a build folder."""
    ctx = SimpleNamespace(cfg=read_config(None, ["attribution.ig_steps=4", *overrides], "quick"),
                          build=tmp_path, data_key="data")
    ctx.model = lambda name: (model_keys[name][0], {})
    return ctx


@pytest.fixture
def zoo(monkeypatch):
    a, b = build_cnn(32, 1, seed=0), build_cnn(32, 1, seed=1)
    keys = {"main": (a, "key-a"), "main-2": (b, "key-b")}
    monkeypatch.setattr(models, "key", lambda ctx, name: keys[name][1])
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype(np.float32)
    return keys, x, np.array([0, 1, 1])


def test_a_map_set_is_computed_once_and_kept_under_its_content_key(tmp_path, zoo, monkeypatch):
    # catches: a store that recomputes what it holds, a key that misses the model, the images, the
    # targets or the attribution settings (a stale map served), or a disk copy that differs from the maps
    keys, x, target = zoo
    computed = []
    real = maps.compute
    monkeypatch.setattr(maps, "compute", lambda *a, **k: computed.append(a[2:4]) or real(*a, **k))
    ctx = _store_ctx(tmp_path, keys)
    first = maps.get(ctx, "main", "ig", "black", x, target, adaptive=False)
    assert maps.get(ctx, "main", "ig", "black", x, target, adaptive=False) is first
    assert len(computed) == 1 and len(list((tmp_path / "cache" / "maps").glob("*.npz"))) == 1
    fresh = maps.integrated_gradients_adaptive(maps.ig_boundary(ctx, keys["main"][0]), x, np.zeros_like(x), target,
                                               steps=4, max_steps=4, tolerance=1.0, batch_size=64)
    np.testing.assert_array_equal(first.maps, fresh.attributions)
    np.testing.assert_array_equal(first.gap, fresh.gap)
    later = maps.get(_store_ctx(tmp_path, keys), "main", "ig", "black", x, target, adaptive=False)   # a later build
    assert len(computed) == 1
    for f in ("maps", "targets", "gap", "f_image", "f_baseline"):
        np.testing.assert_array_equal(getattr(later, f), getattr(first, f))
    assert later.steps == first.steps == 4
    maps.get(ctx, "main-2", "ig", "black", x, target, adaptive=False)
    maps.get(ctx, "main", "ig", "black", x[:2], target[:2], adaptive=False)
    maps.get(ctx, "main", "ig", "black", x, 1 - target, adaptive=False)
    maps.get(ctx, "main", "ig", "white", x, target, adaptive=False)
    maps.get(_store_ctx(tmp_path, keys, ["attribution.ig_steps=8"]), "main", "ig", "black", x, target, adaptive=False)
    assert len(computed) == 6


def test_gradcam_from_the_store_is_the_explainers(tmp_path, zoo):
    # catches: the store's Grad-CAM at another layer or target than asked, or an explainer shared by two models
    keys, x, target = zoo
    ctx = _store_ctx(tmp_path, keys)
    layer = maps.cam_layers(ctx, keys["main"][0]).layer
    got = maps.get(ctx, "main", "gradcam", layer, x, target)
    np.testing.assert_array_equal(got.maps, GradcamExplainer(keys["main"][0], layer)(x, target))
    assert got.gap is None and got.steps is None
    again = maps.get(_store_ctx(tmp_path, keys), "main", "gradcam", layer, x, target)     # read back from disk
    assert again.gap is None and again.steps is None and again.f_image is None
    np.testing.assert_array_equal(again.maps, got.maps)
    assert maps.explainer(ctx, keys["main"][0], layer) is maps.explainer(ctx, keys["main"][0], layer)
    assert maps.explainer(ctx, keys["main"][0], layer) is not maps.explainer(ctx, keys["main-2"][0], layer)
    with pytest.raises(ValueError, match="method in"):
        maps.get(ctx, "main", "lime", layer, x, target)


def test_an_unreadable_stored_set_is_computed_again_and_a_nameless_model_is_not_kept(tmp_path, zoo):
    # catches: a truncated cache file trusted (or crashing the build), or the cascade's randomized copy
    # stored under a zoo model's key
    keys, x, target = zoo
    ctx = _store_ctx(tmp_path, keys)
    good = maps.get(ctx, "main", "ig", "black", x, target, adaptive=False)
    (path,) = (tmp_path / "cache" / "maps").glob("*.npz")
    path.write_bytes(b"PK\x03\x04 truncated")
    again = maps.get(_store_ctx(tmp_path, keys), "main", "ig", "black", x, target, adaptive=False)
    np.testing.assert_array_equal(again.maps, good.maps)
    maps.get(ctx, None, "ig", "black", x, target, model=keys["main-2"][0], adaptive=False)
    assert len(list((tmp_path / "cache" / "maps").glob("*.npz"))) == 1


def test_prune_keeps_only_the_map_sets_this_build_asked_for(tmp_path, zoo):
    # catches: a prune that deletes what the build uses, or one that keeps every old set forever
    keys, x, target = zoo
    maps.get(_store_ctx(tmp_path, keys), "main", "ig", "black", x, target, adaptive=False)   # an earlier build
    ctx = _store_ctx(tmp_path, keys)
    kept = maps.get(ctx, "main", "ig", "white", x, target, adaptive=False)
    assert maps.prune(ctx) == 1
    (left,) = (tmp_path / "cache" / "maps").glob("*.npz")
    assert left.stem == maps.map_key(ctx, "main", "ig", "white", x, target, False)
    assert kept.setting == "white"


def test_each_named_baseline_is_the_librarys_with_the_configs_settings(tmp_path, zoo):
    # catches: one baseline name answered with another's images, the blur's sigma not scaled to the image size,
    # noise with another number of draws, or the training mean taken from other images than the training split
    from xaikit import baselines as xb
    keys, x, _ = zoo
    ctx = _store_ctx(tmp_path, keys)
    train = np.random.default_rng(1).integers(0, 255, (4, 32, 32, 1), dtype=np.uint8)
    ctx.prepared = lambda: SimpleNamespace(x=lambda split: train if split == "train" else None)
    a = ctx.cfg.section("attribution")
    expected = {"black": xb.black(x), "white": xb.white(x), "blurred": xb.blurred(x, a["blur_sigma"] * 32 / 128),
                "noise": xb.uniform_noise(x, a["noise_draws"], a["seed"]),
                "train_mean": xb.train_mean(x, (train / 255.0).mean(0))}
    for name, want in expected.items():
        np.testing.assert_allclose(maps.baseline_images(name, x, ctx), want, rtol=1e-6, err_msg=name)
    assert maps.baseline_images("noise", x, ctx).shape == (a["noise_draws"], *x.shape)
    with pytest.raises(ValueError, match="baseline expects one of"):
        maps.baseline_images("grey", x, ctx)


def test_a_map_set_is_frozen_and_ig_doubles_its_steps_unless_told_not_to(tmp_path, zoo):
    # catches: a stored map set that a caller can change for every later reader, or the store's IG fixed at its
    # first step count by default (the completeness gaps of Q3.1 would exceed the tolerance unreported)
    import dataclasses
    keys, x, target = zoo
    ctx = _store_ctx(tmp_path, keys, ["attribution.ig_tolerance=0.0000001", "attribution.ig_max_steps=16"])
    doubled = maps.get(ctx, "main", "ig", "black", x, target)
    fixed = maps.get(ctx, "main", "ig", "black", x, target, adaptive=False)
    assert doubled.steps == 16 and fixed.steps == 4      # the largest step count used
    assert not np.array_equal(doubled.maps, fixed.maps)
    assert np.all(doubled.gap <= fixed.gap + 1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        doubled.maps = fixed.maps


@pytest.mark.parametrize("baseline, draws", [("black", 1), ("noise", 2)])
def test_the_ig_progress_bar_counts_every_path_point(tmp_path, zoo, monkeypatch, baseline, draws):
    # catches: a bar whose total is not draws x images x (steps + 1) (it stops short or runs past 100%)
    from contextlib import contextmanager
    keys, x, target = zoo
    totals = []

    @contextmanager
    def fake_bar(label, total, unit):
        totals.append(total)
        yield lambda n=1: None

    monkeypatch.setattr(maps, "bar", fake_bar)
    ctx = _store_ctx(tmp_path, keys, [f"attribution.noise_draws={draws}"])
    maps.get(ctx, "main", "ig", baseline, x, target, adaptive=False)
    assert totals == [draws * len(x) * (ctx.cfg["attribution.ig_steps"] + 1)]


class _Engine:
    """A stand-in for report.engine.RayEngine: a map job is the set computed at once ("ok"), a failure
    ("fail"), or refused while models still train ("busy")."""

    def __init__(self, mode):
        self.mode, self.jobs, self.compute = mode, [], maps.compute     # the worker's own copy of the code

    def submit_maps(self, ctx, name, requests):
        if self.mode == "busy":
            return None
        self.jobs.append((name, [r[:2] for r in requests]))
        return [(name, r) for r in requests]

    def result(self, ref):
        if self.mode == "fail":
            raise RuntimeError("RayTaskError: the last line")     # RayEngine.result says a failure in one line
        return [maps.as_arrays(self.compute(self.ctx, self.ctx.model(name)[0], *r)) for name, r in ref]


@pytest.mark.parametrize("mode", ["ok", "fail", "busy"])
def test_a_prefetched_map_set_comes_from_its_job_and_equals_the_one_made_here(tmp_path, zoo, monkeypatch, mode):
    # catches: a map job's result ignored (the set computed again here) or stored under another key, a failed
    # job crashing the build instead of the set being made here, a job started while models still train, or
    # a second job for a set already asked for
    keys, x, target = zoo
    here = maps.get(_store_ctx(tmp_path / "here", keys), "main", "ig", "black", x, target, adaptive=False)
    ctx = _store_ctx(tmp_path / "jobs", keys)
    assert not maps.prefetch(ctx, "main", "ig", "black", x, target, adaptive=False)     # no engine: nothing
    engine = _Engine(mode)
    engine.ctx = ctx
    vars(ctx)["_engine"] = engine
    started = maps.prefetch(ctx, "main", "ig", "black", x, target, adaptive=False)
    assert started == (mode != "busy")
    assert not maps.prefetch(ctx, "main", "ig", "black", x, target, adaptive=False)     # already under way
    assert len(engine.jobs) == (mode != "busy")
    said, computed = [], []
    monkeypatch.setattr(maps, "log", said.append)
    real = maps.compute
    monkeypatch.setattr(maps, "compute", lambda *a, **k: computed.append(1) or real(*a, **k))
    got = maps.get(ctx, "main", "ig", "black", x, target, adaptive=False)
    assert len(computed) == (mode != "ok")
    assert len(said) == (mode == "fail") and (mode != "fail" or said[0] == (
        "map job IG (black) of model main failed on Ray (RayTaskError: the last line); computing it here"))
    for f in ("maps", "targets", "gap", "f_image", "f_baseline"):
        np.testing.assert_array_equal(getattr(got, f), getattr(here, f))
    assert got.steps == here.steps
    stored = maps.get(_store_ctx(tmp_path / "jobs", keys), "main", "ig", "black", x, target, adaptive=False)
    np.testing.assert_array_equal(stored.maps, here.maps)
    assert not maps.prefetch(ctx, "main", "ig", "black", x, target, adaptive=False)     # held: no job


def test_prefetch_and_get_default_to_the_same_ig(tmp_path, zoo):
    # catches: prefetch's adaptive default differing from get's (a default call's job started under another key,
    # never used, and its set made again here)
    keys, x, target = zoo
    ctx = _store_ctx(tmp_path, keys)
    engine = _Engine("ok")
    engine.ctx = ctx
    vars(ctx)["_engine"] = engine
    assert maps.prefetch(ctx, "main", "ig", "black", x, target)
    maps.get(ctx, "main", "ig", "black", x, target)
    assert vars(ctx)["_map_pending"] == {}

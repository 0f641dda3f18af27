"""The learned-nothing reference (report/learned.py, issue #32 item 3) on a stand-in context: which random-label
models count, the mean unit-mass map they give, the rows made again at a seed's own decisions, and the words.

The context holds planted cards and a planted map store (a model's map of an image is its own constant pattern,
scaled by 1 + the explained class), so each test knows the reference's value by hand."""

from types import SimpleNamespace

import numpy as np
import pytest

from report import learned

SEEDS = ("random-1", "random-2", "random-3")
CFG = {"random_labels.seeds": 3, "random_labels.target_accuracy": 0.95, "verdicts.random_auc_band": 0.1,
       "verdicts.control_fit": 0.9, "attribution.ig_baseline": "blurred"}
# random-1 as intended; random-2 memorised but off chance on validation; random-3 did not memorise
TRAIN_ACC = {"random-1": 0.95, "random-2": 0.99, "random-3": 0.90}
VAL_AUC = {"random-1": 0.6, "random-2": 0.75, "random-3": 0.5}
PATTERN = {m: np.full((4, 4), i + 1.0) for i, m in enumerate(SEEDS)}
PATTERN["random-1"] = np.arange(16, dtype=float).reshape(4, 4)     # not uniform: unit mass is visible


def _ctx(monkeypatch, train_acc=TRAIN_ACC, val_auc=VAL_AUC):
    calls = []

    def get(ctx, name, method, setting, x, target, **kw):
        calls.append((name, method, setting, tuple(np.asarray(target).tolist())))
        t = np.asarray(target, float)[:, None, None]
        return SimpleNamespace(maps=-(1 + t) * PATTERN[name][None] * np.ones((len(x), 1, 1)))

    monkeypatch.setattr(learned.maps, "get", get)
    def cam_layers(ctx, model):
        assert model in SEEDS, f"Grad-CAM's layer is looked up on a model, got {model!r}"   # not its card
        return SimpleNamespace(layer="conv", reason="")

    monkeypatch.setattr(learned.maps, "cam_layers", cam_layers)
    monkeypatch.setattr(learned, "validation_auc", lambda ctx, name: val_auc[name])
    cards = {m: {"train_accuracy": a} for m, a in train_acc.items()}
    return SimpleNamespace(cfg=CFG, model=lambda name: (name, cards[name])), calls


def test_as_intended_takes_the_edges_of_the_band_and_of_the_target():
    # catches: >= / <= of the rule made strict (a model exactly at the target or the band's edge left out)
    assert learned.as_intended("random", 0.95, 0.4, CFG) and learned.as_intended("random", 0.95, 0.6, CFG)
    assert not learned.as_intended("random", 0.9499, 0.5, CFG)
    assert not learned.as_intended("random", 0.95, 0.3999, CFG) and not learned.as_intended("random", 0.95, 0.6001, CFG)
    assert learned.as_intended("control", 0.9, 0.5, CFG) and not learned.as_intended("control", 0.8999, 0.5, CFG)
    assert learned.random_auc_band(CFG) == pytest.approx((0.4, 0.6))


def test_only_the_models_as_intended_make_the_reference(monkeypatch):
    # catches: the counted models' rule inverted, a left-out model averaged in, the mean taken as a sum, the
    # unit-mass scaling or the absolute value dropped
    ctx, _ = _ctx(monkeypatch)
    assert learned.counted(ctx) == ("random-1",)
    x, target = np.zeros((3, 4, 4)), np.array([0, 1, 1])
    ref = learned.reference(ctx, "ig", x, target)
    assert ref.models == ("random-1",) and ref.not_counted == ("random-2", "random-3")
    unit = PATTERN["random-1"] / PATTERN["random-1"].sum()
    assert np.allclose(ref.maps, unit[None]) and np.allclose(ref.maps.sum(axis=(1, 2)), 1.0)
    both = _ctx(monkeypatch, val_auc={**VAL_AUC, "random-2": 0.5})[0]
    two = learned.reference(both, "gradcam", x, target)
    assert two.models == ("random-1", "random-2")
    assert np.allclose(two.maps, (unit + np.full((4, 4), 1 / 16)) / 2)


def test_no_counted_model_gives_no_maps_and_says_why(monkeypatch):
    # catches: a reference made of no model (zeros) instead of none, or the reason left empty
    ctx, calls = _ctx(monkeypatch, val_auc={m: 0.9 for m in SEEDS})
    ref = learned.reference(ctx, "ig", np.zeros((2, 4, 4)), np.array([0, 1]))
    assert ref.maps is None and calls == [] and ref.not_counted == SEEDS
    n = learned.numbers(ref)
    assert not n["any"] and n["n"] == 0 and n["phrase"] == "" and "none of the 3" in n["reason"]
    assert learned.on_subset(ctx, ref, np.array([0]), np.zeros((1, 4, 4)), np.array([1])) is None


def test_numbers_name_the_counted_models(monkeypatch):
    ctx, _ = _ctx(monkeypatch, val_auc={**VAL_AUC, "random-2": 0.5})
    n = learned.numbers(learned.reference(ctx, "ig", np.zeros((2, 4, 4)), np.array([0, 1])))
    assert n["any"] and n["n"] == 2 and n["some_not_counted"] and n["reason"] == ""
    assert n["phrase"] == "the 2 random-label models counted in Q5.1, random-1 and random-2"
    one = learned.numbers(learned.reference(_ctx(monkeypatch)[0], "ig", np.zeros((2, 4, 4)), np.array([0, 1])))
    assert one["phrase"] == "the one random-label model counted in Q5.1, random-1" and one["any"] and one["n"] == 1
    every = learned.numbers(learned.reference(_ctx(monkeypatch, val_auc={m: 0.5 for m in SEEDS},
                                                   train_acc={m: 1.0 for m in SEEDS})[0], "ig", np.zeros((2, 4, 4)),
                                              np.array([0, 1])))
    assert every["n"] == 3 and not every["some_not_counted"] and every["not_counted_text"] == ""


def test_the_reference_joins_the_nulls_only_when_there_is_one():
    nulls = {"input": 1}
    assert learned.with_reference(nulls, None) is nulls
    assert learned.with_reference(nulls, np.zeros(2))["learned"].shape == (2,) and "learned" not in nulls


def test_a_seeds_rows_are_made_again_only_where_its_decision_differs(monkeypatch):
    # catches: a seed's rows taken from the main model's targets everywhere (or recomputed everywhere), or the
    # reference's own array changed in place
    ctx, calls = _ctx(monkeypatch)
    x, target = np.zeros((4, 4, 4)), np.array([0, 0, 1, 1])
    ref = learned.reference(ctx, "ig", x, target)
    before = ref.maps.copy()
    calls.clear()
    pos, seed_target = np.array([1, 2, 3]), np.array([0, 0, 1])       # image 2: the seed decides 0, the main 1
    out = learned.on_subset(ctx, ref, pos, x[pos], seed_target)
    assert np.allclose(out, before[pos]) and np.array_equal(ref.maps, before)
    assert calls == [("random-1", "ig", "blurred", (0,))]              # only the differing row, at the seed's target


def test_own_maps_are_per_model_at_the_given_targets(monkeypatch):
    # catches: own_maps ignoring the target it is given (a seed's own decisions), or averaging the models
    ctx, calls = _ctx(monkeypatch, val_auc={**VAL_AUC, "random-2": 0.5})
    x = np.zeros((2, 4, 4))
    ref = learned.reference(ctx, "ig", x, np.array([0, 0]))
    calls.clear()
    own = learned.own_maps(ctx, ref, 2, np.array([0, 1]), np.array([1, 1]))
    assert sorted(own) == ["random-1", "random-2"] and own["random-2"].shape == (2, 2, 2)
    assert np.allclose(own["random-2"], 2 * 2.0)                       # |-(1 + 1) * 2|, average-pooled
    assert {c[3] for c in calls if c[3] != (0, 0)} == {(1, 1)}
    default = learned.own_maps(ctx, ref, 2)
    assert np.allclose(default["random-2"], 2.0)                       # the reference's targets: class 0
    cam = learned.own_maps(ctx, learned.reference(ctx, "gradcam", x, np.array([0, 0])), 2)
    assert {c[2] for c in calls if c[1] == "gradcam"} == {"conv"} and np.allclose(cam["random-2"], 2.0)


def test_own_maps_of_a_seed_are_made_again_only_where_its_decision_differs(monkeypatch):
    # catches: a seed's own maps computed on all its images (the explained sample's maps not reused: ~100 s of Q3 in
    # a default build), the rows taken at the main model's targets everywhere, or the positions ignored
    ctx, calls = _ctx(monkeypatch)
    x, target = np.zeros((4, 4, 4)), np.array([0, 0, 1, 1])
    ref = learned.reference(ctx, "ig", x, target)
    calls.clear()
    pos, seed_target = np.array([1, 2, 3]), np.array([0, 0, 1])       # image 2: the seed decides 0, the main 1
    own = learned.own_maps(ctx, ref, 4, pos, seed_target)["random-1"]
    made = [c for c in calls if len(c[3]) != len(target)]              # the reference's own set is only looked up
    assert made == [("random-1", "ig", "blurred", (0,))]
    pattern = PATTERN["random-1"]
    assert np.allclose(own[0], pattern) and np.allclose(own[1], pattern) and np.allclose(own[2], 2 * pattern)
    assert np.allclose(learned.own_maps(ctx, ref, 4, pos, target[pos])["random-1"][1], 2 * pattern)


def test_gradcam_without_a_conv_layer_is_refused(monkeypatch):
    ctx, _ = _ctx(monkeypatch)
    assert learned.setting(ctx, "ig", None) == "blurred"
    assert learned.setting(ctx, "gradcam", "random-1") == "conv"
    monkeypatch.setattr(learned.maps, "cam_layers", lambda ctx, model: SimpleNamespace(layer=None, reason="no conv"))
    with pytest.raises(ValueError, match="no conv"):
        learned.setting(ctx, "gradcam", None)


def test_the_validation_auc_is_nan_for_one_class_and_computed_once(monkeypatch):
    # catches: an AUC forced from one class (sklearn raises) or the cache keyed wrongly (computed for every call)
    import xaikit.train
    counts = []
    def predict_probs(model, x):
        assert model in SEEDS, f"predicted with a model, got {model!r}"
        counts.append(1)
        return np.linspace(0, 1, len(x))

    monkeypatch.setattr(xaikit.train, "predict_probs", predict_probs)
    one = SimpleNamespace(cfg=CFG, model=lambda n: (n, {}),
                          prepared=lambda: SimpleNamespace(y=lambda s: np.zeros(4, int), x=lambda s: np.zeros((4, 2))))
    assert np.isnan(learned.validation_auc(one, "random-1"))
    two = SimpleNamespace(cfg=CFG, model=lambda n: (n, {}),
                          prepared=lambda: SimpleNamespace(y=lambda s: np.array([0, 0, 1, 1]), x=lambda s: np.zeros((4, 2))))
    assert learned.validation_auc(two, "random-1") == 1.0 and learned.validation_auc(two, "random-1") == 1.0
    assert len(counts) == 1 and learned.validation_auc(two, "random-2") == 1.0 and len(counts) == 2

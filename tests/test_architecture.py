"""[model] architecture, model.path and the model contract (issue #21): built-in designs, the user's
builder (its source in the cache key), a model trained elsewhere, and one-line refusals."""

import hashlib
import textwrap

import keras
import numpy as np
import pytest

from report import architecture, models
from report.build import build_report, make_context, manifest_sources
from xaikit.errors import ModelError
from xaikit.model import (NO_CONV, as_two_class, build_batchnorm_cnn, build_cnn, check_contract,
                          fresh_copy, gradcam_layers, logits_model)

from .conftest import ROOT, make_dataset

SIZE = 32
BASE = [f"data.image_size={SIZE}"]


def context(tmp_path, *overrides):
    root = tmp_path / "d"
    if not root.exists():
        make_dataset(root, per_class={"train": 6, "test": 3})
    return make_context(str(root), None, BASE + list(overrides), None, tmp_path / "build")


def builder_module(tmp_path, monkeypatch, body: str, name: str):
    """A builder module ``name`` (unique per test: Python caches imported modules) in a folder on
    sys.path; returns its file."""
    folder = tmp_path / "mods"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text("import keras\nfrom keras import layers\n\n" + textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(folder))
    return path


def conv_body(units=2, activation="softmax", conv=True):
    return f"""
    def build(image_size, channels, *, seed, dropout):
        inp = keras.Input((image_size, image_size, channels))
        x = layers.Conv2D(4, 3, padding="same", activation="relu",
                          kernel_initializer=keras.initializers.HeUniform(seed=seed))(inp) if {conv} else inp
        x = layers.GlobalAveragePooling2D()(x) if {conv} else layers.Flatten()(x)
        return keras.Model(inp, layers.Dense({units}, activation="{activation}")(x))
    """


# --- the contract on models ---------------------------------------------------------------

def test_baseline_auto_layers_are_todays_named_layers():
    # catches: "auto" resolving to another layer than the study's last_conv / conv_block1 (results would change)
    cam = gradcam_layers(build_cnn(64, 1, seed=0))
    assert (cam.layer, cam.early, cam.grid, cam.early_grid) == ("last_conv", "conv_block1", 4, 16)
    assert check_contract(build_cnn(64, 1, seed=0), 64, 1).model.name == "xaikit_cnn"   # unchanged, not wrapped


def test_batchnorm_design_differs_and_meets_the_contract():
    # catches: the second built-in lacking batch normalisation or a Grad-CAM layer
    m = build_batchnorm_cnn(64, 1, seed=0)
    assert any(isinstance(l, keras.layers.BatchNormalization) for l in m.layers)
    c = check_contract(m, 64, 1)
    assert c.cam.layer == "block4" and isinstance(m.get_layer("block4"), keras.layers.Activation)   # post-activation


def test_sigmoid_is_explained_as_its_logit():
    # catches: a sigmoid model wrapped with other probabilities, or a margin that is not the logit z
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3, activation="relu")(inp))
    m = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="out")(x))
    x0 = np.random.default_rng(0).uniform(size=(4, SIZE, SIZE, 1)).astype(np.float32)
    two = check_contract(m, SIZE, 1).model
    np.testing.assert_allclose(two.predict(x0, verbose=0)[:, 1], m.predict(x0, verbose=0)[:, 0], atol=1e-6)
    z = logits_model(two).predict(x0, verbose=0)
    p = m.predict(x0, verbose=0)[:, 0]
    np.testing.assert_allclose(z[:, 0], 0.0)
    np.testing.assert_allclose(1 / (1 + np.exp(-z[:, 1])), p, atol=1e-5)     # sigmoid(margin) = P(PNEUMONIA)


def test_three_classes_are_refused():
    # catches: a 3-class softmax accepted (the margin z_target - z_other would be undefined)
    inp = keras.Input((SIZE, SIZE, 1))
    m = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp)))
    with pytest.raises(ModelError, match=r"two classes.*got output shape \(None, 3\)"):
        as_two_class(m)


def test_no_conv_layer_skips_gradcam_only():
    # catches: a model without a conv layer refused outright (IG can still run) or given a bogus layer
    inp = keras.Input((SIZE, SIZE, 1))
    m = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))
    c = check_contract(m, SIZE, 1)
    assert c.cam.layer is None and c.cam.reason == NO_CONV


def test_fresh_copy_is_seeded_and_new():
    # catches: the Q5 arms of a model file starting from its trained weights, or from unseeded ones
    m = build_cnn(SIZE, 1, seed=0)
    m.get_layer("last_conv").kernel.assign(np.zeros(m.get_layer("last_conv").kernel.shape))
    a, b, c = fresh_copy(m, 1), fresh_copy(m, 1), fresh_copy(m, 2)
    k = lambda mm: mm.get_layer("last_conv").kernel.numpy()     # noqa: E731
    assert np.array_equal(k(a), k(b)) and not np.array_equal(k(a), k(c)) and np.abs(k(a)).sum() > 0


# --- the contract at the build: one line, exit 2, the previous report kept ------------------

def _old_report(ctx):
    ctx.build.mkdir(parents=True, exist_ok=True)
    (ctx.build / "report.html").write_text("an old report")


@pytest.mark.parametrize("case", ["no module", "three classes", "not a model file"])
def test_bad_model_inputs_are_one_line_and_keep_the_report(tmp_path, monkeypatch, case):
    # catches: a traceback (or a retired report) for a typo in the builder path, a 3-class builder,
    # or a .keras file that is not a model
    overrides = {"no module": ["model.architecture=nowhere_xyz.cnn:build"],
                 "three classes": ["model.architecture=user_cnn3:build"],
                 "not a model file": [f"model.path={tmp_path / 'junk.keras'}"]}[case]
    builder_module(tmp_path, monkeypatch, conv_body(units=3), "user_cnn3")
    (tmp_path / "junk.keras").write_bytes(b"not a zip at all")
    ctx = context(tmp_path)
    _old_report(ctx)
    with pytest.raises(ModelError) as info:
        build_report(data=str(tmp_path / "d"), overrides=BASE + overrides, build=tmp_path / "build")
    msg = str(info.value)
    assert "\n" not in msg and {"no module": "could not be imported", "three classes": "two classes",
                                "not a model file": "is not a Keras model file"}[case] in msg
    assert (ctx.build / "report.html").read_text() == "an old report"


def test_check_logs_the_no_conv_line(tmp_path, monkeypatch, capfd):
    # catches: Grad-CAM skipped silently
    builder_module(tmp_path, monkeypatch, conv_body(conv=False), "user_flat")
    architecture.check(context(tmp_path, "model.architecture=user_flat:build"))
    assert NO_CONV in capfd.readouterr().err


# --- the cache key --------------------------------------------------------------------------

def test_editing_the_builder_changes_the_key_and_a_template_does_not(tmp_path, monkeypatch):
    # catches: a user's edited builder reusing models trained from its old text; or prose in the key
    path = builder_module(tmp_path, monkeypatch, conv_body(), "user_keyed")
    ctx = context(tmp_path, "model.architecture=user_keyed:build")
    before = {m: models.key(ctx, m) for m in ("main", "random-1", "control-1")}
    assert path.resolve() in manifest_sources(ctx)                    # the rebuild fingerprint sees it too
    assert not any("templates" in p.parts for p in manifest_sources(ctx))
    path.write_text(path.read_text().replace("Conv2D(4,", "Conv2D(5,"))
    after = {m: models.key(ctx, m) for m in before}
    assert all(before[m] != after[m] for m in before)
    base = context(tmp_path)
    assert models.key(base, "main") != after["main"]                   # the architecture's name is in the key


# --- a model trained elsewhere ---------------------------------------------------------------

def test_model_file_is_used_not_trained(tmp_path, monkeypatch):
    # catches: --model training the main model anyway, or a card without the file's hash
    trained = build_cnn(SIZE, 1, seed=3)
    f = tmp_path / "elsewhere.keras"
    trained.save(f)
    ctx = context(tmp_path, f"model.path={f}")
    monkeypatch.setattr(models, "train_classifier", lambda *a, **k: pytest.fail("the main model was trained"))
    architecture.check(ctx)
    model, card = models.get(ctx, "main")
    assert card["external"]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert card["epochs_run"] == 0 and ("model main", "given, not trained") in [t[:2] for t in ctx.timings]
    x = np.random.default_rng(1).uniform(size=(3, SIZE, SIZE, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-6)
    assert models.names(ctx)[:2] == ("main", "random-1")            # no replicates of a recipe not run here
    arm = architecture.build(ctx, seed=7, dropout=0.0)               # Q5's arms: its architecture, fresh weights
    assert [l.name for l in arm.layers] == [l.name for l in model.layers]
    assert not np.allclose(arm.get_layer("last_conv").kernel.numpy(), model.get_layer("last_conv").kernel.numpy())


def test_example_builder_meets_the_contract():
    # catches: the README's example drifting out of the contract
    ctx_free = check_contract(__import__("examples.my_cnn", fromlist=["build"]).build(64, 1, seed=0, dropout=0.5),
                              64, 1)
    assert ctx_free.head == "sigmoid" and ctx_free.cam.layer == "my_conv3"
    assert (ROOT / "examples" / "my_cnn.py").exists()


# --- a model without a conv layer: the report is built without Grad-CAM ----------------------

def test_templates_render_without_gradcam():
    # catches: an answer template (findings, Q2.3, Q5) reading Grad-CAM numbers that a model without a
    # conv layer does not have (the build would stop at render instead of skipping Grad-CAM)
    import copy
    import json

    from report.render import answer_env, answer_variables, render_answer
    fx = json.loads((ROOT / "tests" / "fixtures" / "answer_variables.json").read_text())
    n = copy.deepcopy(fx["numbers"])
    n["q4"] = {"skipped": NO_CONV, "is_skipped": True, "layer": None, "seeds": None, "has_seeds": False}     # what report/q4_gradcam.py returns when skipped
    n["q2"]["errors"].update(methods=["IG"], layer=None, cam_skipped=NO_CONV, has_layer=False, is_cam_skipped=True,
                             methods_or="IG", methods_and="IG")
    n["q2"]["model"].update(gradcam_layer=None, gradcam_grid=0, gradcam_reason=NO_CONV, has_gradcam_layer=False)
    for c in ("NORMAL", "PNEUMONIA"):
        n["q2"]["errors"]["maps"][c].pop("Grad-CAM")
    q5 = n["q5"]
    q5.pop("gradcam")
    q5.update(methods=[["ig", "IG"]], gradcam_skipped=NO_CONV, gradcam_is_skipped=True,
              result_lines=[r for r in q5["result_lines"] if r["method"] == "IG"])
    for k in ("gradcam",):
        q5["cascade"].pop(k)
        q5["cascade"]["floor"].pop(k)
        q5["cascade"]["ceiling"].pop(k)
    variables = answer_variables(n, fx["config"], fx["profile"])
    env = answer_env()
    for path in sorted((ROOT / "templates" / "answers").glob("*.md")):
        if not path.name.startswith("q4_"):          # Q4's answers are replaced by the skip line (render)
            assert render_answer(env, path.name, variables)

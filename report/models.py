"""The models of the study, trained once and cached with a JSON model card.

- ``main``: the classifier of Q2 (true labels, augmentation, checkpoint on validation loss).
- ``main-i`` (i = 2..``train.replicates``): the same recipe with seed ``train.seed + i - 1``
  (Q2's spread over seeds; the explanations use ``main``).
- ``random-i`` (i = 1..``random_labels.seeds``): same architecture on permuted training labels,
  each on its own seeded, stratified subset of the training split (subset, permutation and
  initialisation seeded by i), until it memorises them (Q5).
- ``control-i``: the matched arm: same subset, recipe and number of epochs as ``random-i``,
  true labels, its own seed (Q5's "same labels" reference and seed-to-seed ceiling).
- ``random-all`` / ``control-all`` / ``control-all-2`` (when ``random_labels.whole_split``): the
  assignment's literal design, a random-label model on the *whole* training split with every label
  permuted, and two matched true-label controls (same images, recipe and epochs, their own seeds):
  the design's ceiling compares two models of the same recipe, as the seeded subsets' does.

A model is reused only if its card's key (data listing, config keys, training code, the
architecture: its name, the user's builder source, the model file's hash) matches and the file
loads in Keras safe mode; otherwise it is trained again. With ``model.path`` (``--model``) the
main model is the given file, evaluated but not trained (and there are no replicates); the
random-label and control arms retrain its architecture with fresh weights.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np

import xaikit.model  # noqa: F401  (registers xaikit's layers, e.g. PerImageStandardization, for loading)
from xaikit import metrics as xmetrics
from xaikit.data import stratified_subset
from xaikit.pipeline import AugmentParams
from xaikit.train import TrainSettings, predict_probs, train_classifier

from . import architecture, artifacts
from .context import DATA_SOURCES, Context, lib, log

SOURCES = DATA_SOURCES + lib("model", "train", "pipeline", "metrics") + [Path(__file__), Path(architecture.__file__)]
_ARM_KEYS = tuple(f"random_labels.{k}" for k in (
    "subset_size", "target_accuracy", "max_epochs", "permutation_seed", "train_seed",
    "control_seed", "learning_rate"))       # not random_labels.seeds: adding a seed keeps the others
WHOLE = "all"                               # the index of the whole-split arm: random-all, control-all
WHOLE_2 = "all-2"                           # the whole split's second control (its ceiling's partner): control-all-2
CONFIG = {"main": ("data.", "train.", "augment."),
          "random": ("data.", "train.batch_size") + _ARM_KEYS,
          "control": ("data.", "train.batch_size") + _ARM_KEYS}
EXCLUDE = ("train.replicates",)       # adding a replicate keeps the others
KINDS = tuple(CONFIG)


def arm(kind: str, i: int) -> str:
    """Name of seed ``i`` (1-based) of the ``random`` or ``control`` arm, e.g. ``random-2``."""
    return f"{kind}-{i}"


def names(ctx: Context) -> tuple[str, ...]:
    """Every model of this config: main, main-2..r, then random-1..k (and random-all) and
    control-1..k (and control-all, control-all-2)."""
    k, r = ctx.cfg["random_labels.seeds"], replicates(ctx)
    on = ctx.cfg["random_labels.whole_split"]
    whole = {"random": (WHOLE,) if on else (), "control": (WHOLE, WHOLE_2) if on else ()}
    return (("main",) + tuple(arm("main", i) for i in range(2, r + 1)) +
            tuple(arm(kind, i) for kind in ("random", "control") for i in tuple(range(1, k + 1)) + whole[kind]))


def upstream(name: str) -> str | None:
    """The random-label model a control trains from (its epoch count): control-i -> random-i,
    control-all and control-all-2 -> random-all; None for the others."""
    if not name.startswith("control-"):
        return None
    return "random-" + (WHOLE if name.endswith(WHOLE_2) else name.removeprefix("control-"))


def replicates(ctx: Context) -> int:
    """Seeds of the main recipe in use: ``train.replicates``, or 1 for a model trained elsewhere."""
    return 1 if architecture.model_file(ctx) is not None else ctx.cfg["train.replicates"]


def subset_arm(ctx: Context, kind: str) -> tuple[str, ...]:
    """The seeded-subset models of one arm: ``random-1..k`` or ``control-1..k``."""
    return tuple(arm(kind, i) for i in range(1, ctx.cfg["random_labels.seeds"] + 1))


def expand(ctx: Context, name: str) -> tuple[str, ...]:
    """``random`` / ``control`` stand for all seeds of that arm, ``replicates`` for main-2..r,
    ``second`` for main-2 alone (none with one seed); other names for themselves."""
    if name in ("random", "control"):
        return tuple(n for n in names(ctx) if n.startswith(name + "-"))
    if name == "replicates":
        return tuple(n for n in names(ctx) if n.startswith("main-"))
    if name == "second":
        return tuple(n for n in names(ctx) if n == arm("main", 2))
    return (name,)


def expand_all(ctx: Context, groups) -> tuple[str, ...]:
    """:func:`expand` over several names, e.g. a section's ``("main", "random", "control")``."""
    return tuple(m for g in groups for m in expand(ctx, g))


def parse(ctx: Context, name: str) -> tuple[str, int]:
    """(kind, seed index) of a model name; index 0 for main and for the whole-split arm
    (``random-all``, ``control-all``), -1 for the whole split's second control (``control-all-2``)."""
    kind, _, idx = name.partition("-")
    if name == "main":
        return "main", 0
    k = ctx.cfg["random_labels.seeds"]
    if kind in ("random", "control") and idx.isdigit() and 1 <= int(idx) <= k:
        return kind, int(idx)
    if kind in ("random", "control") and idx == WHOLE and ctx.cfg["random_labels.whole_split"]:
        return kind, 0
    if kind == "control" and idx == WHOLE_2 and ctx.cfg["random_labels.whole_split"]:
        return kind, -1
    if kind == "main" and idx.isdigit() and 2 <= int(idx) <= replicates(ctx):
        return kind, int(idx)
    raise ValueError(f"model name expects one of {names(ctx)}, got {name!r}")


def key(ctx: Context, name: str) -> str:
    kind, i = parse(ctx, name)
    up = key(ctx, upstream(name)) if kind == "control" else ""
    return artifacts.digest(name, ctx.listing.digest(), ctx.cfg.digest(CONFIG[kind], EXCLUDE),
                            artifacts.source_digest(SOURCES), architecture.digest(ctx), up)


def paths(ctx: Context, name: str) -> tuple[Path, Path]:
    return ctx.build / "models" / f"{name}.keras", ctx.build / "models" / f"{name}.json"


def load_cached(ctx: Context, name: str):
    """(model, card) when the cached model is fresh and loads safely, else None."""
    model_path, card_path = paths(ctx, name)
    card = artifacts.read_json(card_path)
    if not card or card.get("key") != key(ctx, name) or not model_path.exists():
        return None
    try:
        model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    except Exception as exc:  # a truncated or foreign file: never trusted, retrained
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            reason = "it contains a Lambda layer (arbitrary code), which Keras safe mode refuses"
        log(f"model {model_path} could not be loaded: {reason}; training again")
        return None
    return model, card


def _save(ctx: Context, name: str, model: keras.Model, card: dict) -> None:
    model_path, card_path = paths(ctx, name)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(f".{model_path.name}.tmp.keras")
    model.save(tmp)
    tmp.replace(model_path)
    artifacts.atomic_write_json(card_path, card)


def get(ctx: Context, name: str):
    cached = load_cached(ctx, name)
    if cached is not None:
        log(f"model {name}: reused {paths(ctx, name)[0]} (key {cached[1]['key']})")
        ctx.timings.append((f"model {name}", "reused", 0.0))
        return cached
    t0 = time.perf_counter()
    kind, i = parse(ctx, name)
    if name == "main" and architecture.model_file(ctx) is not None:
        model, card = _given_main(ctx)
        card.update(key=key(ctx, name), name=name, params=int(model.count_params()))
        _save(ctx, name, model, card)
        ctx.timings.append((f"model {name}", "given, not trained", time.perf_counter() - t0))
        log(f"model main: not trained: {card['external']['path']} (sha256 {card['external']['sha256'][:12]}) "
            f"evaluated in {time.perf_counter() - t0:.0f} s; saved {paths(ctx, name)[0]}")
        return model, card
    model, card = {"main": _train_main, "random": _train_random,
                   "control": _train_control}[kind](ctx, i)
    card.update(key=key(ctx, name), name=name, params=int(model.count_params()),
                config={k: v for k, v in ctx.cfg.as_dict().items()
                        if any(k.startswith(p) for p in CONFIG[kind])})
    _save(ctx, name, model, card)
    ctx.timings.append((f"model {name}", "computed", time.perf_counter() - t0))
    log(f"model {name}: trained in {card['seconds']:.0f} s, {card['epochs_run']} epochs "
        f"({card['stopped']}); saved {paths(ctx, name)[0]}")
    return model, card


def _evaluate(model, ctx: Context, threshold: float) -> dict:
    p = ctx.prepared()
    probs = predict_probs(model, p.x("test"))
    return {"at_0.5": xmetrics.binary_metrics(p.y("test"), probs, 0.5).as_dict(),
            "at_val_threshold": xmetrics.binary_metrics(p.y("test"), probs, threshold).as_dict()}


def _train_main(ctx: Context, i: int = 0):
    """The main recipe; replicate ``i`` >= 2 uses seed ``train.seed + i - 1``."""
    cfg, p = ctx.cfg, ctx.prepared()
    t = dict(cfg.section("train"))
    t["seed"] += max(i, 1) - 1
    settings = TrainSettings(
        epochs=t["epochs"], batch_size=t["batch_size"], learning_rate=t["learning_rate"],
        final_learning_rate=t["final_learning_rate"], warmup_epochs=t["warmup_epochs"],
        label_smoothing=t["label_smoothing"], class_weights=t["class_weights"],
        schedule="cosine", select="val_loss", seed=t["seed"],
        augment=AugmentParams(**cfg.section("augment")) if t["augment"] else None)
    strategy = ctx.strategy()
    with strategy.scope() if strategy is not None else nullcontext():
        model = architecture.build(ctx, dropout=t["dropout"], seed=t["seed"])
    log(f"training model {arm('main', i) if i > 1 else 'main'} (seed {t['seed']}) on {len(p.idx('train'))} "
        f"images, validating on {len(p.idx('val'))}")
    res = train_classifier(model, p.x("train"), p.y("train"), p.x("val"), p.y("val"), settings,
                           strategy=strategy)
    p_val = predict_probs(model, p.x("val"))
    threshold = xmetrics.youden_threshold(p.y("val"), p_val)
    card = {"history": res.history, "epochs_run": res.epochs_run, "best_epoch": res.best_epoch,
            "seconds": res.seconds, "stopped": res.stopped, "val_threshold": threshold,
            "val": xmetrics.binary_metrics(p.y("val"), p_val, threshold).as_dict(),
            "val_at_0.5": xmetrics.binary_metrics(p.y("val"), p_val, 0.5).as_dict(),
            "n_train": int(len(p.idx("train"))), "n_val": int(len(p.idx("val"))),
            "n_test": int(len(p.idx("test"))), "data_digest": ctx.listing.digest(), "seed": t["seed"]}
    card["test"] = _evaluate(model, ctx, threshold)
    return model, card


def _given_main(ctx: Context):
    """The main model trained elsewhere: its validation threshold and test metrics, computed
    here exactly as for a model trained here; the card records the file and its sha256."""
    p = ctx.prepared()
    model, contract, sha = architecture.external(ctx)
    t0 = time.perf_counter()
    p_val = predict_probs(model, p.x("val"))
    threshold = xmetrics.youden_threshold(p.y("val"), p_val)
    card = {"history": {}, "epochs_run": 0, "best_epoch": 0, "seconds": 0.0, "stopped": "trained elsewhere",
            "val_threshold": threshold, "val": xmetrics.binary_metrics(p.y("val"), p_val, threshold).as_dict(),
            "val_at_0.5": xmetrics.binary_metrics(p.y("val"), p_val, 0.5).as_dict(),
            "n_train": 0, "n_val": int(len(p.idx("val"))), "n_test": int(len(p.idx("test"))),
            "data_digest": ctx.listing.digest(),
            "external": {"path": str(architecture.model_file(ctx)), "sha256": sha, "head": contract.head}}
    card["test"] = _evaluate(model, ctx, threshold)
    card["seconds_evaluated"] = time.perf_counter() - t0
    return model, card


def _arm_name(kind: str, i: int) -> str:
    return arm(kind, {0: WHOLE, -1: WHOLE_2}.get(i, i))


def random_subset(ctx: Context, i: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices into Prepared, true labels, permuted labels) of seed ``i``'s random-label arm.

    Seed ``i`` >= 1 draws its own stratified subset of ``subset_size`` training images (seeded
    by ``(permutation_seed, i)``); ``i`` = 0 is the whole training split. All labels of the
    subset are permuted with a generator seeded by ``(permutation_seed, i)`` as well; ``i`` = -1 (the
    whole split's second control) is the whole split too, with ``i`` = 0's labels.
    """
    i = max(i, 0)
    p, r = ctx.prepared(), ctx.cfg.section("random_labels")
    train = p.idx("train")
    seq = np.random.SeedSequence([r["permutation_seed"], i])
    subset_seed, perm_seed = (int(s) for s in seq.generate_state(2))
    sub = train if i == 0 else train[stratified_subset(p.labels[train], r["subset_size"], subset_seed)]
    y = p.labels[sub]
    permuted = np.random.default_rng(perm_seed).permutation(y)
    return sub, y, permuted


def _memorise(ctx: Context, i: int, labels: np.ndarray, seed: int, epochs: int, stop: float | None):
    cfg, p = ctx.cfg, ctx.prepared()
    r = cfg.section("random_labels")
    sub, _, _ = random_subset(ctx, i)
    settings = TrainSettings(
        epochs=epochs, batch_size=cfg["train.batch_size"], learning_rate=r["learning_rate"],
        label_smoothing=0.0, class_weights="none", schedule="constant", select="last",
        stop_at_train_accuracy=stop, seed=seed, augment=None)
    strategy = ctx.strategy()
    with strategy.scope() if strategy is not None else nullcontext():
        model = architecture.build(ctx, dropout=0.0, seed=seed)
    res = train_classifier(model, p.images[sub], labels, None, None, settings, strategy=strategy)
    train_acc = float(np.mean((predict_probs(model, p.images[sub]) >= 0.5) == (labels == 1)))
    card = {"history": res.history, "epochs_run": res.epochs_run, "seconds": res.seconds,
            "stopped": res.stopped, "train_accuracy": train_acc, "n_train": int(len(sub)),
            "whole_split": i <= 0, "subset_digest": artifacts.digest(p.names[sub].tolist()),
            "seed": seed}
    card["test"] = _evaluate(model, ctx, 0.5)
    return model, card


def _train_random(ctx: Context, i: int):
    r = ctx.cfg.section("random_labels")
    sub, y, permuted = random_subset(ctx, i)
    log(f"training model {_arm_name('random', i)} on {len(sub)} images with permuted labels "
        f"(until train accuracy >= {r['target_accuracy']}, at most {r['max_epochs']} epochs)")
    model, card = _memorise(ctx, i, permuted, r["train_seed"] + i - 1, r["max_epochs"],
                            r["target_accuracy"])
    card["changed_labels"] = float(np.mean(permuted != y))
    card["target_accuracy"] = r["target_accuracy"]
    card["reached_target"] = card["train_accuracy"] >= r["target_accuracy"]
    return model, card


def _train_control(ctx: Context, i: int):
    """control-i: seed ``control_seed + i - 1`` (control-all: ``control_seed - 1``, control-all-2:
    ``control_seed - 2``, disjoint from every control-i)."""
    r = ctx.cfg.section("random_labels")
    name = _arm_name("control", i)
    _, random_card = ctx.model(upstream(name))
    sub, y, _ = random_subset(ctx, i)
    epochs = int(random_card["epochs_run"])
    log(f"training model {name} on the same {len(sub)} images, true labels, "
        f"{epochs} epochs (as {upstream(name)})")
    return _memorise(ctx, i, y, r["control_seed"] + i - 1, epochs, None)


def card_summary(card: dict) -> str:
    return json.dumps({k: card[k] for k in ("epochs_run", "seconds", "stopped") if k in card})

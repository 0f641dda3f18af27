"""Training: one entry point for the main model, the random-label model and the control.

The caller passes the labels to learn (true or permuted), so the data randomization test
reuses exactly this code.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import keras
import numpy as np

from .pipeline import AugmentParams, make_dataset, to_float


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    class_weights: str = "balanced"      # "balanced" or "none"
    schedule: str = "cosine"             # "cosine" (warm-up + cosine decay) or "constant"
    select: str = "val_loss"             # restore the epoch with the best "val_loss", or "last"
    stop_at_train_accuracy: float | None = None   # memorisation: stop once reached
    clean_check_margin: float = 0.1      # ... checked (a clean pass over the training images)
                                         # once the running train accuracy is within this of it
    seed: int = 0
    augment: AugmentParams | None = None


@dataclass(frozen=True)
class TrainResult:
    history: dict = field(default_factory=dict)   # metric name -> list per epoch
    epochs_run: int = 0
    best_epoch: int = 0                            # 1-based epoch whose weights were kept
    seconds: float = 0.0
    stopped: str = ""                              # why training ended
    train_accuracy: float = float("nan")           # final accuracy on the training labels, no dropout


def class_weight_vector(labels: np.ndarray, mode: str) -> np.ndarray:
    """Per-sample weights: ``balanced`` gives each class the same total weight."""
    labels = np.asarray(labels).astype(int)
    if mode == "none":
        return np.ones(len(labels), np.float32)
    if mode != "balanced":
        raise ValueError(f"class weight mode expects 'balanced' or 'none', got {mode!r}")
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    if np.any(counts == 0):
        raise ValueError(f"balanced class weights need both classes, got counts {counts.tolist()}")
    per_class = len(labels) / (2.0 * counts)
    return per_class[labels].astype(np.float32)


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """P(PNEUMONIA) for uint8 or float images."""
    x = to_float(images)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out)[:, 1]


class _Watch(keras.callbacks.Callback):
    """Keeps the best weights on validation loss and stops on a train-accuracy target."""

    def __init__(self, settings: TrainSettings, x_train: np.ndarray, y_train: np.ndarray,
                 verbose: bool):
        super().__init__()
        self.s = settings
        self.x_train, self.y_train = x_train, y_train
        self.best = np.inf
        self.best_epoch = 0
        self.best_weights = None
        self.train_accuracy = float("nan")
        self.stopped = "epoch limit"
        self.verbose = verbose
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        target = self.s.stop_at_train_accuracy
        if target is not None:
            # the clean pass costs a third of an epoch: only near the target, and at the end
            checked = (logs.get("accuracy", 1.0) >= target - self.s.clean_check_margin
                       or epoch + 1 >= self.s.epochs)
            if checked:
                probs = predict_probs(self.model, self.x_train)
                self.train_accuracy = float(np.mean((probs >= 0.5) == (self.y_train == 1)))
            logs["train_accuracy_clean"] = self.train_accuracy if checked else float("nan")
            if checked and self.train_accuracy >= target:
                self.stopped = f"train accuracy {self.train_accuracy:.3f} reached target"
                self.model.stop_training = True
        if self.s.select == "val_loss" and "val_loss" in logs:
            if logs["val_loss"] <= self.best:
                self.best = logs["val_loss"]
                self.best_epoch = epoch + 1
                self.best_weights = self.model.get_weights()
        else:
            self.best_epoch = epoch + 1
        if self.verbose:
            shown = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
            print(f"epoch {epoch + 1}/{self.s.epochs} {time.perf_counter() - self.t0:.0f}s "
                  f"{shown}", file=sys.stderr, flush=True)


def train_classifier(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray,
                     x_val: np.ndarray | None, y_val: np.ndarray | None,
                     settings: TrainSettings, *, verbose: bool = True,
                     strategy=None) -> TrainResult:
    """Train ``model`` (in place: it is freshly built for this) on ``y_train`` labels (0/1).

    Returns the history and which epoch's weights were kept (best validation loss, or the
    last epoch with ``select="last"``). With a ``tf.distribute`` ``strategy`` (e.g.
    MirroredStrategy over several GPUs), build the model inside ``strategy.scope()`` and pass
    the strategy here: the optimizer and metrics are created in the same scope.
    """
    y_train = np.asarray(y_train).astype(int)
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train and y_train differ in length: {len(x_train)} vs {len(y_train)}")
    keras.utils.set_random_seed(settings.seed)
    weights = class_weight_vector(y_train, settings.class_weights)
    onehot = np.eye(2, dtype=np.float32)[y_train]
    train_ds = make_dataset(x_train, onehot, weights=weights, batch_size=settings.batch_size,
                            training=True, seed=settings.seed, augment=settings.augment)
    val_ds = None
    if x_val is not None and y_val is not None and len(x_val):
        val_onehot = np.eye(2, dtype=np.float32)[np.asarray(y_val).astype(int)]
        val_ds = make_dataset(x_val, val_onehot, batch_size=128)
    steps = int(np.ceil(len(x_train) / settings.batch_size))
    if settings.schedule == "cosine":
        warm = settings.warmup_epochs * steps
        decay = max(1, settings.epochs * steps - warm)
        alpha = settings.final_learning_rate / settings.learning_rate
        if warm > 0:   # linear warm-up from the final rate to learning_rate, then cosine decay
            lr = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=settings.final_learning_rate, decay_steps=decay, alpha=alpha,
                warmup_target=settings.learning_rate, warmup_steps=warm)
        else:
            lr = keras.optimizers.schedules.CosineDecay(settings.learning_rate, decay, alpha=alpha)
    elif settings.schedule == "constant":
        lr = settings.learning_rate
    else:
        raise ValueError(f"schedule expects 'cosine' or 'constant', got {settings.schedule!r}")
    with strategy.scope() if strategy is not None else nullcontext():
        model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                               keras.metrics.AUC(name="auc")])
    watch = _Watch(settings, x_train, y_train, verbose)
    t0 = time.perf_counter()
    hist = model.fit(train_ds, validation_data=val_ds, epochs=settings.epochs, verbose=0,
                     callbacks=[watch])
    seconds = time.perf_counter() - t0
    if watch.best_weights is not None:
        model.set_weights(watch.best_weights)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return TrainResult(history=history, epochs_run=len(next(iter(history.values()), [])),
                       best_epoch=watch.best_epoch, seconds=seconds, stopped=watch.stopped,
                       train_accuracy=watch.train_accuracy)

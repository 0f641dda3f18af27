"""Classification metrics (scikit-learn) and validation-only threshold choice."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn import metrics as skm


@dataclass(frozen=True)
class BinaryMetrics:
    threshold: float
    accuracy: float
    sensitivity: float     # recall of PNEUMONIA (label 1)
    specificity: float     # recall of NORMAL (label 0)
    precision: float
    f1: float
    auc: float
    tn: int
    fp: int
    fn: int
    tp: int

    def as_dict(self) -> dict:
        return asdict(self)


def binary_metrics(y_true: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> BinaryMetrics:
    """Metrics for P(label 1) = ``p`` at ``threshold`` (predict 1 when p >= threshold)."""
    y_true = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=np.float64)
    if y_true.shape != p.shape:
        raise ValueError(f"labels and scores differ in shape: {y_true.shape} vs {p.shape}")
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, pred, labels=[0, 1]).ravel()
    auc = skm.roc_auc_score(y_true, p) if len(np.unique(y_true)) == 2 else float("nan")
    return BinaryMetrics(
        threshold=float(threshold),
        accuracy=float(skm.accuracy_score(y_true, pred)),
        sensitivity=float(skm.recall_score(y_true, pred, pos_label=1, zero_division=0)),
        specificity=float(skm.recall_score(y_true, pred, pos_label=0, zero_division=0)),
        precision=float(skm.precision_score(y_true, pred, zero_division=0)),
        f1=float(skm.f1_score(y_true, pred, zero_division=0)),
        auc=float(auc), tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp))


def youden_threshold(y_val: np.ndarray, p_val: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity - 1 on the validation set only."""
    y_val = np.asarray(y_val).astype(int)
    if len(np.unique(y_val)) != 2:
        raise ValueError(f"validation labels need both classes, got {np.unique(y_val).tolist()}")
    fpr, tpr, thr = skm.roc_curve(y_val, p_val)
    j = tpr - fpr
    best = int(np.argmax(j))
    return float(np.clip(thr[best], 0.0, 1.0))

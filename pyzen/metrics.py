"""`pyzen.metrics`: classification metrics over int64 Tensors of class indices.

`confusion_matrix(pred, target, num_classes)[i, j]` counts samples whose true class is i and
predicted class is j (scikit-learn's convention). Precision, recall and F1 follow scikit-learn
with zero_division=0: a class never predicted has precision 0, a class never present has recall
0, and F1 is 0 where precision + recall is 0. average="macro" is the unweighted mean over all
`num_classes` classes; average=None gives one value per class.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._tensor import Tensor

__all__ = ["accuracy", "confusion_matrix", "precision_recall_f1"]


def _labels(x: Any, name: str, op: str) -> np.ndarray:
    if isinstance(x, Tensor):
        a = x._numpy()
    elif isinstance(x, np.ndarray):
        a = x
    else:
        raise TypeError(f"{op}: {name} must be a Tensor of class indices, got {type(x).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must hold integer class indices (int64), got dtype {a.dtype}")
    return a.reshape(-1)


def _pair(pred: Any, target: Any, op: str) -> tuple[np.ndarray, np.ndarray]:
    p, t = _labels(pred, "pred", op), _labels(target, "target", op)
    if p.shape != t.shape:
        raise ValueError(f"{op}: pred and target must have the same number of elements, got {p.size} and {t.size}")
    return p, t


def accuracy(pred: Tensor, target: Tensor) -> float:
    """The fraction of positions where pred == target (a Python float; nan for empty inputs)."""
    p, t = _pair(pred, target, "accuracy")
    if p.size == 0:
        return float("nan")
    return float(np.mean(p == t))


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """An int64 (num_classes, num_classes) Tensor: rows are true classes, columns predictions."""
    p, t = _pair(pred, target, "confusion_matrix")
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes <= 0:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}")
    for name, a in (("pred", p), ("target", t)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            bad = a[(a < 0) | (a >= num_classes)][0]
            raise ValueError(f"confusion_matrix: {name} holds class {int(bad)}, outside 0..{num_classes - 1}")
    cm = np.bincount(t.astype(np.int64) * num_classes + p.astype(np.int64), minlength=num_classes * num_classes)
    return Tensor._make(cm.reshape(num_classes, num_classes).astype(np.int64))


def precision_recall_f1(pred: Tensor, target: Tensor, num_classes: int, average: str | None = "macro") -> tuple:
    """(precision, recall, f1): Python floats for average="macro", float64 Tensors of shape
    (num_classes,) for average=None."""
    if average not in ("macro", None):
        raise ValueError(f"precision_recall_f1: average must be 'macro' or None, got {average!r}")
    cm = confusion_matrix(pred, target, num_classes)._numpy().astype(np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    if average is None:
        return Tensor._make(precision), Tensor._make(recall), Tensor._make(f1)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())

"""pyzen.metrics against hand-computed confusion matrices and scikit-learn's formulas."""
from __future__ import annotations

import numpy as np
import pytest

import pyzen
from pyzen import metrics
from conftest import to_np

# 8 samples, 3 classes (and a 4th class that never occurs, for zero division).
TARGET = [0, 0, 0, 1, 1, 2, 2, 2]
PRED = [0, 1, 0, 1, 2, 2, 2, 0]
# Rows = true class, columns = predicted class, counted by hand.
CM = [[2, 1, 0], [0, 1, 1], [1, 0, 2]]


def t(values):
    return pyzen.tensor(values, dtype=pyzen.int64)


def test_accuracy():
    assert metrics.accuracy(t(PRED), t(TARGET)) == pytest.approx(5 / 8)
    assert metrics.accuracy(t([[1, 2], [3, 4]]), t([[1, 2], [3, 0]])) == pytest.approx(0.75)


def test_confusion_matrix_hand_computed():
    cm = metrics.confusion_matrix(t(PRED), t(TARGET), 3)
    assert cm.dtype == pyzen.int64 and cm.tolist() == CM
    cm4 = metrics.confusion_matrix(t(PRED), t(TARGET), 4)
    assert cm4.tolist() == [row + [0] for row in CM] + [[0, 0, 0, 0]]


def test_precision_recall_f1_hand_computed():
    # class 0: tp 2, predicted 3, actual 3 -> p 2/3, r 2/3, f1 2/3
    # class 1: tp 1, predicted 2, actual 2 -> p 1/2, r 1/2, f1 1/2
    # class 2: tp 2, predicted 3, actual 3 -> p 2/3, r 2/3, f1 2/3
    p, r, f = metrics.precision_recall_f1(t(PRED), t(TARGET), 3, average=None)
    np.testing.assert_allclose(to_np(p), [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(to_np(r), [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(to_np(f), [2 / 3, 1 / 2, 2 / 3])
    mp, mr, mf = metrics.precision_recall_f1(t(PRED), t(TARGET), 3)
    assert (mp, mr, mf) == pytest.approx((11 / 18, 11 / 18, 11 / 18))


def test_zero_division_gives_zero():
    # class 1 is predicted but never true (recall 0/0 -> 0); class 2 is true but never predicted
    # (precision 0/0 -> 0); class 3 never appears at all (everything 0).
    target = [0, 0, 2]
    pred = [0, 1, 1]
    p, r, f = metrics.precision_recall_f1(t(pred), t(target), 4, average=None)
    np.testing.assert_allclose(to_np(p), [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(to_np(r), [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(to_np(f), [2 * 1.0 * 0.5 / 1.5, 0.0, 0.0, 0.0])
    mp, mr, mf = metrics.precision_recall_f1(t(pred), t(target), 4)
    assert (mp, mr, mf) == pytest.approx((0.25, 0.125, (2 / 3) / 4))


def sklearn_style(pred, target, k):
    """scikit-learn's definitions written out with loops (zero_division=0)."""
    out = []
    for c in range(k):
        tp = sum(1 for p, y in zip(pred, target) if p == c and y == c)
        fp = sum(1 for p, y in zip(pred, target) if p == c and y != c)
        fn = sum(1 for p, y in zip(pred, target) if p != c and y == c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append((prec, rec, f1))
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_random_labels_against_written_out_formulas(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(1, 60))
    pred, target = rng.integers(0, k, n).tolist(), rng.integers(0, k, n).tolist()
    want = sklearn_style(pred, target, k)
    p, r, f = metrics.precision_recall_f1(t(pred), t(target), k, average=None)
    np.testing.assert_allclose(np.stack([to_np(p), to_np(r), to_np(f)], axis=1), want, rtol=1e-12)
    macro = metrics.precision_recall_f1(t(pred), t(target), k)
    np.testing.assert_allclose(macro, want.mean(axis=0), rtol=1e-12)
    cm = np.zeros((k, k), np.int64)
    for p_, y in zip(pred, target):
        cm[y, p_] += 1
    assert metrics.confusion_matrix(t(pred), t(target), k).tolist() == cm.tolist()


def test_errors():
    with pytest.raises(ValueError, match="class 3"):
        metrics.confusion_matrix(t([0, 3]), t([0, 1]), 3)
    with pytest.raises(ValueError, match="same number"):
        metrics.accuracy(t([0, 1]), t([0]))
    with pytest.raises(TypeError, match="integer"):
        metrics.accuracy(pyzen.tensor([0.0]), t([0]))
    with pytest.raises(ValueError, match="average"):
        metrics.precision_recall_f1(t([0]), t([0]), 2, average="micro")

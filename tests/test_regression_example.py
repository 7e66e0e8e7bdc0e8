"""The tabular regression example learns a noisy nonlinear target far better than the mean."""
from __future__ import annotations

import numpy as np

from pyzen.examples.regression import fit


def test_regression_example_beats_the_mean_baseline():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5))
    y = 50 * np.tanh(x[:, 0]) - 30 * x[:, 1] + 20 * x[:, 2] * x[:, 3] + 5 * rng.standard_normal(300)
    r = fit(x, y, epochs=60, lr=3e-3)
    assert r["test_mse"] < 0.25 * r["baseline_mse"]
    assert r["test_mae"] ** 2 <= r["test_mse"] + 1e-9  # mean |e| never exceeds sqrt(mean e^2)

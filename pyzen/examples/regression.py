"""Tabular regression: an MLP with dropout trained with Adam on scikit-learn's diabetes data
(442 patients, 10 features, disease progression a year later), reporting the held-out loss the
way Keras' `model.evaluate` does.

    pip install scikit-learn && python -m pyzen.examples.regression
"""
from __future__ import annotations

import argparse

import numpy as np

import pyzen
import pyzen.nn as nn
import pyzen.nn.functional as F
from pyzen.utils.data import DataLoader, TensorDataset


def mlp(features: int, hidden: int = 64, dropout: float = 0.1) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, 1),
    )


@pyzen.no_grad()
def evaluate(model: nn.Module, x: pyzen.Tensor, y: pyzen.Tensor) -> dict[str, float]:
    model.eval()
    pred = model(x).squeeze(-1)
    model.train()
    return {"mse": F.mse_loss(pred, y).item(), "mae": F.l1_loss(pred, y).item()}


def fit(x: np.ndarray, y: np.ndarray, epochs: int = 30, batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """Standardise, split 80/20, train, and return the test metrics (in the target's units)
    next to the baseline of always predicting the training mean."""
    pyzen.manual_seed(seed)
    order = pyzen.randperm(len(x)).numpy()
    cut = int(0.8 * len(x))
    train, test = order[:cut], order[cut:]
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-8
    y_mu, y_sd = y[train].mean(), y[train].std()
    as_tensor = lambda a: pyzen.tensor(a, dtype=pyzen.float32)  # noqa: E731
    xt, yt = as_tensor((x - mu) / sd), as_tensor((y - y_mu) / y_sd)
    model = mlp(x.shape[1])
    opt = pyzen.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(xt[train], yt[train]), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.mse_loss(model(xb).squeeze(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    scaled = evaluate(model, xt[test], yt[test])
    baseline = float(np.mean((y[test] - y_mu) ** 2))
    return {"test_mse": scaled["mse"] * y_sd**2, "test_mae": scaled["mae"] * y_sd, "baseline_mse": baseline}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        raise SystemExit("this example reads scikit-learn's diabetes data: pip install scikit-learn") from None
    data = load_diabetes()
    r = fit(data.data, data.target.astype(np.float64), epochs=args.epochs, lr=args.lr)
    print(f"test loss (mse) {r['test_mse']:.1f} - mae {r['test_mae']:.1f} - predicting the mean gives mse {r['baseline_mse']:.1f}")


if __name__ == "__main__":
    main()

"""`pyzen` (or `python -m pyzen` outside the source tree): print the configuration, then fit a small two-layer network with
autograd on synthetic data as a self-check of the whole stack (native matmul included)."""
from __future__ import annotations

import pyzen


def main(steps: int = 200, lr: float = 0.1) -> None:
    pyzen.show_config()
    pyzen.manual_seed(0)
    x = pyzen.randn(256, 8)
    y = (x[:, :1] * 2 - x[:, 1:2]).tanh()  # a smooth target the network can fit
    w1 = (pyzen.randn(8, 32) * 0.3).requires_grad_()
    w2 = (pyzen.randn(32, 1) * 0.3).requires_grad_()
    for step in range(steps):
        loss = ((x @ w1).tanh() @ w2 - y).pow(2).mean()
        loss.backward()
        with pyzen.no_grad():
            for w in (w1, w2):
                w -= lr * w.grad
                w.grad = None
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  mse {loss.item():.4f}")


if __name__ == "__main__":
    main()

"""`pyzen.optim`: optimizers and learning-rate schedulers with PyTorch's names and semantics."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]

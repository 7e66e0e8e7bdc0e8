"""`pyzen.nn`: neural-network building blocks (modules arrive with the training-stack issue)."""
from . import functional

__all__ = ["functional"]

"""`pyzen.utils`: data loading (`pyzen.utils.data`)."""
from . import data

__all__ = ["data"]

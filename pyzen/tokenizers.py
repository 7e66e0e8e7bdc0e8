"""`pyzen.tokenizers`: the two tokenizers a character-level language model needs.

`ByteTokenizer`: the UTF-8 bytes of the text (vocab_size 256); any text round-trips, and
decoding an invalid byte sequence gives U+FFFD replacement characters instead of failing.
`CharTokenizer`: one id per distinct character of a training text, in sorted order.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["ByteTokenizer", "CharTokenizer"]


class ByteTokenizer:
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"ByteTokenizer.encode: expected a str, got {type(text).__name__}")
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < 256:
                raise ValueError(f"ByteTokenizer.decode: id {i} is outside the byte range 0..255")
        return bytes(ids).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return "ByteTokenizer(vocab_size=256)"


class CharTokenizer:
    """Ids are the positions of the text's distinct characters in sorted order.

    Encoding a character the text did not contain raises KeyError naming it, unless `unk` (a
    character) is given: then it is added to the vocabulary if needed and unknown characters map to it."""

    def __init__(self, text: str, unk: str | None = None) -> None:
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer: expected the training text as a str, got {type(text).__name__}")
        chars = set(text)
        if unk is not None:
            if not isinstance(unk, str) or len(unk) != 1:
                raise ValueError(f"CharTokenizer: unk must be a single character, got {unk!r}")
            chars.add(unk)
        self.chars = sorted(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))
        self.unk = unk
        self.unk_id = None if unk is None else self.stoi[unk]

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: expected a str, got {type(text).__name__}")
        if self.unk_id is not None:
            return [self.stoi.get(c, self.unk_id) for c in text]
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise KeyError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        try:
            return "".join(self.itos[int(i)] for i in ids)
        except KeyError as e:
            raise KeyError(f"CharTokenizer.decode: id {e.args[0]} is outside the vocabulary (size {self.vocab_size})") from None

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

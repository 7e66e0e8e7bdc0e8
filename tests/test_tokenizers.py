"""pyzen.tokenizers: byte and character tokenizers, including non-ASCII text."""
from __future__ import annotations

import pytest

from pyzen.tokenizers import ByteTokenizer, CharTokenizer

TEXTS = ["", "hello world", "héllo wörld", "日本語のテキスト", "emoji 🙂👍🏽 and\ttabs\nnewlines", "\x00\x7f\u0080\uffff\U0010ffff"]


@pytest.mark.parametrize("text", TEXTS)
def test_byte_tokenizer_round_trip(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert all(0 <= i < 256 for i in ids)
    assert tok.decode(ids) == text


def test_byte_tokenizer_invalid_bytes_and_ids():
    tok = ByteTokenizer()
    assert tok.vocab_size == 256 and ByteTokenizer.vocab_size == 256
    assert tok.encode("é") == [0xC3, 0xA9]
    assert tok.decode([0x68, 0xFF, 0x69]) == "h\ufffdi"
    assert tok.decode([0xC3]) == "\ufffd"  # a truncated multi-byte sequence
    with pytest.raises(ValueError, match="256"):
        tok.decode([256])
    with pytest.raises(TypeError):
        tok.encode(b"bytes")


def test_char_tokenizer():
    text = "hello, wörld 🙂"
    tok = CharTokenizer(text)
    assert tok.chars == sorted(set(text)) and tok.vocab_size == len(set(text))
    assert tok.encode("lo") == [sorted(set(text)).index("l"), sorted(set(text)).index("o")]
    for s in [text, "wörld", "🙂🙂", ""]:
        assert tok.decode(tok.encode(s)) == s
    with pytest.raises(KeyError, match="'z'"):
        tok.encode("zebra")
    with pytest.raises(KeyError):
        tok.decode([tok.vocab_size])


def test_char_tokenizer_unk():
    tok = CharTokenizer("abc", unk="?")
    assert tok.vocab_size == 4 and tok.chars == ["?", "a", "b", "c"]
    assert tok.encode("axb") == [1, 0, 2]
    assert tok.decode(tok.encode("abz")) == "ab?"
    tok2 = CharTokenizer("ab?", unk="?")
    assert tok2.vocab_size == 3
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer("abc", unk="<unk>")

"""Text normalisation that keeps character offsets.

``normalise`` maps every character to at most one character (full-width forms to
half-width, upper-case Latin to lower-case, control and zero-width characters to spaces), so
position ``i`` in the normalised text is position ``i`` in the original and evidence offsets
found on the normalised text point straight into what the customer wrote.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from triage.errors import InputError


@lru_cache(maxsize=65536)
def _map_char(ch: str) -> str:
    if ch in "\u200b\u200c\u200d\u2060\ufeff" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
        return " "
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) != 1:
        return ch
    return folded.lower()


def normalise(text: str) -> str:
    """``normalise("ＡＢＣ退款１２３")`` → ``"abc退款123"``; same length as the input."""
    if not isinstance(text, str):
        raise InputError("TEXT_NOT_STRING", f"text must be a str, got {type(text).__name__}")
    return "".join(_map_char(c) for c in text)


_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")


def _visible(ch: str) -> bool:
    return not (ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"))


def check_visible(text: str, field: str = "text") -> str:
    """``text`` if it holds at least one visible character and no lone surrogate; else
    ``InputError`` (``TEXT_EMPTY`` for blank, control-only or invisible-only text,
    ``TEXT_INVALID`` for a surrogate that cannot be encoded)."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise InputError("TEXT_INVALID", f"{field} holds a lone surrogate (not valid Unicode)")
    if not any(_visible(ch) for ch in text):
        raise InputError("TEXT_EMPTY", f"{field} must contain at least one visible character, got {len(text)} "
                         "blank, control or invisible characters")
    return text


def validate_text(text: object, max_chars: int, field: str = "text") -> str:
    """The library's boundary check for one complaint text."""
    if not isinstance(text, str):
        raise InputError("TEXT_NOT_STRING", f"{field} must be a string, got {type(text).__name__}")
    check_visible(text, field)
    if len(text) > max_chars:
        raise InputError("TEXT_TOO_LONG", f"{field} may be at most {max_chars} characters, got {len(text)}")
    return text

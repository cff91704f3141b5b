"""The encoder interface every part of the library codes against."""
from __future__ import annotations

from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Kind = Literal["query", "passage"]


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to L2-normalised vectors.

    ``name`` identifies the encoder and its weights; a bundle trained with one encoder refuses
    to load with another. ``encode(texts, kind)`` returns an ``(n, dim)`` float32 array, one
    row per text, for ``kind`` ``"query"`` (complaints) or ``"passage"`` (knowledge-base cases).
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str], kind: Kind = "query") -> NDArray[np.float32]: ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate an encoder's input: a sequence (not a bare string) of strings."""
    from triage.errors import InputError

    if isinstance(texts, str):
        raise InputError("ENCODE_EXPECTS_LIST", "encode() takes a sequence of texts, got a single str; "
                         "wrap it in a list")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError("ENCODE_BAD_TEXT", f"text {i} must be a str, got {type(t).__name__}")
    return out

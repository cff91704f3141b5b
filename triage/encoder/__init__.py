"""Encoders: the production e5-small model and a tiny offline one for unit tests."""
from __future__ import annotations

from triage.encoder.base import Encoder
from triage.errors import EncoderError

ENCODERS = ("e5-small", "hashing-test")


def get_encoder(name: str = "e5-small") -> Encoder:
    """``get_encoder("e5-small")`` builds (once, cached) and loads the real encoder;
    ``"hashing-test"`` is the tiny deterministic encoder the fast tests use."""
    if name == "e5-small":
        from triage.encoder.e5 import E5Encoder
        return E5Encoder()
    if name == "hashing-test":
        from triage.encoder.hashing import HashingEncoder
        return HashingEncoder()
    raise EncoderError("ENCODER_UNKNOWN", f"encoder must be one of {ENCODERS}, got {name!r}")

"""Errors raised by the triage library, each with a stable ``code`` and a message that
names what was expected and what was given. The HTTP layer maps them to 4xx/5xx answers."""
from __future__ import annotations


class TriageError(Exception):
    """Base class: ``code`` is stable (callers may branch on it), ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class InputError(TriageError, ValueError):
    """A caller gave a text, record or argument the library cannot accept."""


class EncoderError(TriageError):
    """The sentence encoder could not be built, loaded or run."""


class BundleError(TriageError):
    """A model bundle is missing, tampered with, truncated or incompatible."""


class ConfigError(TriageError, ValueError):
    """A configuration file or setting is invalid."""


class DataError(TriageError, ValueError):
    """A training or import file does not match what was expected."""

"""Service settings, read from ``TRIAGE_*`` environment variables (pydantic-settings)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage.paths import DEFAULT_DATABASE_URL, MODELS_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="forbid")

    models_dir: Path = MODELS_DIR
    bundle: Path | None = None                 # serve this bundle instead of models/CURRENT
    encoder: str = "e5-small"
    max_text_chars: int = Field(5000, ge=1, le=100_000)
    max_batch: int = Field(64, ge=1, le=1024)
    # Bounded work: the body is refused (413) before it is parsed when larger than this; a
    # batch (triage items, or the texts of one cases call) may hold this many characters in all.
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_batch_chars: int = Field(50_000, ge=1)
    # Case fields a reply draft or an answer carries (finding, resolution, response) and the
    # JSON of a case's metadata are capped at this many characters.
    max_case_field_chars: int = Field(4000, ge=1, le=100_000)
    database_url: str = DEFAULT_DATABASE_URL   # knowledge base, predictions, feedback, keys, shared state
    max_cases_per_call: int = Field(500, ge=1, le=10_000)
    # Predictions are recorded in the same database; their texts are kept this many days
    # (-1: for ever, 0: never — only a sha256). Feedback keeps its own copy (training data).
    text_retention_days: int = Field(90, ge=-1)
    # Several workers agree within this many seconds: each applies case changes and reload
    # decisions from the database at least this often (PostgreSQL also wakes them at once).
    sync_seconds: float = Field(2.0, gt=0, le=300)
    # Failed authentication attempts a client (IP address) may make in auth_window_seconds
    # before it is refused with 429 for the rest of the window.
    auth_max_failures: int = Field(10, ge=1)
    auth_window_seconds: float = Field(60.0, gt=0)
    # Stored answers of idempotent writes are kept this many days.
    idempotency_days: int = Field(7, ge=1)
    # Poll models/CURRENT every N seconds and reload when it names another bundle (0: off).
    watch_current_seconds: float = Field(0, ge=0)
    # Logs: one JSON object a line (False: plain text, for a terminal).
    json_logs: bool = True

    # Micro-batching (api/batcher.py): concurrent triage requests gathered for at most
    # batch_window_ms milliseconds (up to batch_max_texts texts) into one encode; past
    # max_in_flight texts queued or being computed a request is refused with 503
    # SERVICE_OVERLOADED and Retry-After: retry_after_seconds.
    batch_window_ms: float = Field(5.0, ge=0, le=1000)
    batch_max_texts: int = Field(64, ge=1, le=1024)       # texts per gathered batch (1: no batching)
    max_in_flight: int = Field(128, ge=1, le=100_000)
    retry_after_seconds: int = Field(1, ge=1, le=3600)

    def limits(self) -> dict[str, int]:
        """The limits route summaries and schemas quote (``{max_batch}`` and so on)."""
        return {"max_batch": self.max_batch, "max_text_chars": self.max_text_chars,
                "max_cases_per_call": self.max_cases_per_call, "max_batch_chars": self.max_batch_chars,
                "max_body_bytes": self.max_body_bytes, "max_case_field_chars": self.max_case_field_chars}

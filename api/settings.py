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
    database_url: str = DEFAULT_DATABASE_URL   # knowledge base, predictions and feedback
    max_cases_per_call: int = Field(500, ge=1, le=10_000)
    # Predictions are recorded in the same database; their texts are kept this many days
    # (-1: for ever, 0: never — only a sha256). Feedback keeps its own copy (training data).
    text_retention_days: int = Field(90, ge=-1)
    # POST /v1/admin/reload needs "Authorization: Bearer <token>" when a token is set.
    admin_token: str | None = None
    # Poll models/CURRENT every N seconds and reload when it names another bundle (0: off).
    watch_current_seconds: float = Field(0, ge=0)

    def limits(self) -> dict[str, int]:
        """The limits route summaries and schemas quote (``{max_batch}`` and so on)."""
        return {"max_batch": self.max_batch, "max_text_chars": self.max_text_chars,
                "max_cases_per_call": self.max_cases_per_call}

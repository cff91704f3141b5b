"""Where the project keeps things: one definition of every path the library, the training
commands, the service and the benchmarks share.

``TRIAGE_CACHE_DIR``, ``TRIAGE_SHARED_DATA`` and ``TRIAGE_DATABASE_URL`` override the defaults;
the service's other settings live in ``api.settings``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from triage.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "corpora"
MODELS_DIR = ROOT / "models"
VAR_DIR = ROOT / "var"
REPORTS_DIR = VAR_DIR / "reports"
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'triage.db'}"
MIGRATIONS_DIR = ROOT / "migrations"       # Alembic scripts (alembic.ini beside them)
ALEMBIC_INI = ROOT / "alembic.ini"


def cache_dir() -> Path:
    """The encoder folder and the embedding cache live here (``TRIAGE_CACHE_DIR``, else ``.cache/``)."""
    return Path(os.environ.get("TRIAGE_CACHE_DIR") or ROOT / ".cache")


def database_url(explicit: str | None = None) -> str:
    """``explicit``, else ``$TRIAGE_DATABASE_URL``, else SQLite at ``var/triage.db``."""
    return explicit or os.environ.get("TRIAGE_DATABASE_URL") or DEFAULT_DATABASE_URL


def shared_data_dir(explicit: str | Path | None = None, required: bool = True) -> Path | None:
    """The public data folder: ``explicit``, else ``$TRIAGE_SHARED_DATA``, else ``../shared/data``
    beside the project. Absent: ``DataError(SHARED_DATA_MISSING)``, or None when not required."""
    path = Path(explicit or os.environ.get("TRIAGE_SHARED_DATA") or ROOT.parent / "shared" / "data")
    if path.is_dir():
        return path
    if required:
        raise DataError("SHARED_DATA_MISSING", f"the public data folder {path} is not there; give "
                        "--data-root or set TRIAGE_SHARED_DATA")
    return None


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

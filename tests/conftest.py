"""Shared fixtures: a small corpus cut from the project's own corpora, a bundle trained on it
with the tiny offline encoder (session-scoped, each test gets the loaded model), and — for
tests marked ``slow`` — the real e5-small encoder built once per session."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from triage.bundle import load_bundle
from triage.encoder.hashing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _subset(files: list[Path], per_file: int) -> list[dict]:
    out = []
    for f in files:
        lines = [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        out += [json.loads(ln) for ln in lines[:per_file]]
    return out


@pytest.fixture(autouse=True)
def _private_database(tmp_path, monkeypatch):
    """Every test gets its own knowledge-base database (never the project's var/)."""
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'kb.db'}")


# PostgreSQL for the tests: $TRIAGE_TEST_DATABASE_URL, else the local server (trust auth). Each
# test gets a schema of its own, dropped afterwards, so parallel runs and other users of the
# server never see each other's rows.
PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return os.environ.get("TRIAGE_TEST_DATABASE_URL") or PG_DEFAULT_URL


def _pg_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> str | None:
    """The PostgreSQL base URL when a server answers there, else None (its tests skip)."""
    import psycopg
    try:
        psycopg.connect(_pg_conninfo(pg_base_url()), connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - unreachable: the PostgreSQL variants skip with the reason
        return None
    return pg_base_url()


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


class PgSchema:
    """A fresh schema on the test server; ``url`` points at it (search_path)."""

    def __init__(self, base: str) -> None:
        import psycopg
        self.base, self.name = base, f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(_pg_conninfo(base), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        self.url = pg_schema_url(base, self.name)

    def drop(self) -> None:
        import psycopg
        from triage.db import dispose
        dispose(self.url)
        with psycopg.connect(_pg_conninfo(self.base), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


def require_pg(base: str | None) -> str:
    """``base``, or skip the test saying why (fail instead when TRIAGE_REQUIRE_POSTGRES is set,
    as CI does, so a missing server cannot pass unnoticed)."""
    if base is None:
        from triage.db import mask_url
        why = (f"PostgreSQL is not reachable at {mask_url(pg_base_url())}: start it or set "
               "TRIAGE_TEST_DATABASE_URL")
        if os.environ.get("TRIAGE_REQUIRE_POSTGRES"):
            pytest.fail(why + " (TRIAGE_REQUIRE_POSTGRES is set)")
        pytest.skip(why)
    return base


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: SQLite in the test's folder, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'triage.db'}"
        return
    schema = PgSchema(require_pg(request.getfixturevalue("pg_server")))
    yield schema.url
    schema.drop()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(complaints.jsonl, cases.jsonl): 40 records from each of five corpus slices, 30 cases from each KB file."""
    d = tmp_path_factory.mktemp("corpus")
    slices = ("au", "ec", "fi", "ts", "tu")          # a fixed choice, so the fixture does not move
    complaints = _subset([ROOT / "corpora" / "complaints" / f"{s}.jsonl" for s in slices], 40)
    cases = _subset(sorted((ROOT / "corpora" / "kb").glob("*.jsonl")), 30)
    for name, recs in (("complaints.jsonl", complaints), ("cases.jsonl", cases)):
        (d / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return d / "complaints.jsonl", d / "cases.jsonl"


@pytest.fixture(scope="session")
def test_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, small_corpus, test_encoder) -> Path:
    from training.train import train_bundle

    models = tmp_path_factory.mktemp("models")
    data, cases = small_corpus
    return train_bundle(test_encoder, [data], [cases], models, progress=False,
                        cache_dir=tmp_path_factory.mktemp("emb-cache")).path


@pytest.fixture
def model(tiny_bundle, test_encoder):
    return load_bundle(tiny_bundle, test_encoder)


@pytest.fixture(scope="session")
def e5_encoder():
    from triage.encoder.e5 import E5Encoder
    return E5Encoder()

"""Durable knowledge-base storage (SQLAlchemy core; SQLite by default).

The database is named by a URL (``TRIAGE_DATABASE_URL`` in the service, e.g.
``sqlite:///var/triage.db`` or ``postgresql+psycopg://…``). One table, ``cases``: the case as
JSON, its passage embedding as float32 bytes, and when it was last written. Every write is one
transaction, committed before the call returns, so an accepted case survives a restart.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.errors import DataError


class CaseStore:
    def __init__(self, url: str, dim: int) -> None:
        from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, Text, create_engine, event

        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.url, self.dim = url, dim
        try:
            self.engine = create_engine(url, future=True)
        except Exception as exc:  # noqa: BLE001 - bad URL or missing driver
            raise DataError("DATABASE_URL", f"cannot open database {url!r}: {exc}") from exc
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _record):  # durable and concurrent enough for one service
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        self.meta = MetaData()
        self.cases = Table("cases", self.meta,
                           Column("case_id", String(200), primary_key=True),
                           Column("data", Text, nullable=False),
                           Column("embedding", LargeBinary, nullable=False),
                           Column("updated_at", DateTime(timezone=True), nullable=False))
        self.meta.create_all(self.engine)

    def count(self) -> int:
        from sqlalchemy import func, select
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.cases)).scalar_one())

    def upsert(self, cases: Sequence[dict], embeddings: NDArray[np.float32]) -> None:
        from sqlalchemy import delete, insert

        if embeddings.shape != (len(cases), self.dim):
            raise DataError("CASES_SHAPE", f"expected embeddings of shape ({len(cases)}, {self.dim}), "
                            f"got {embeddings.shape}")
        now = datetime.now(timezone.utc)
        rows = [{"case_id": c["case_id"], "data": json.dumps(c, ensure_ascii=False),
                 "embedding": np.asarray(e, dtype="<f4").tobytes(), "updated_at": now}
                for c, e in zip(cases, embeddings)]
        with self.engine.begin() as conn:                 # one transaction for the whole batch
            conn.execute(delete(self.cases).where(self.cases.c.case_id.in_([r["case_id"] for r in rows])))
            conn.execute(insert(self.cases), rows)

    def get(self, case_id: str) -> dict | None:
        from sqlalchemy import select
        with self.engine.connect() as conn:
            row = conn.execute(select(self.cases.c.data).where(self.cases.c.case_id == case_id)).first()
        return None if row is None else json.loads(row[0])

    def delete(self, case_id: str) -> bool:
        from sqlalchemy import delete
        with self.engine.begin() as conn:
            return conn.execute(delete(self.cases).where(self.cases.c.case_id == case_id)).rowcount > 0

    def load_all(self) -> tuple[list[dict], NDArray[np.float32]]:
        from sqlalchemy import select
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.cases.c.data, self.cases.c.embedding).order_by(self.cases.c.case_id)).all()
        cases = [json.loads(d) for d, _ in rows]
        emb = np.frombuffer(b"".join(e for _, e in rows), dtype="<f4").reshape(len(rows), self.dim) \
            if rows else np.zeros((0, self.dim), np.float32)
        return cases, emb.astype(np.float32)

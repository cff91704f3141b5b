"""Durable storage (SQLAlchemy Core; SQLite or PostgreSQL): the knowledge base and its change
log, reload decisions, stored answers of idempotent writes, and the record of predictions and
supervisors' feedback. The tables are defined in :mod:`triage.schema` and created and upgraded
by Alembic migrations (:func:`triage.db.open_engine` runs them).

The database is named by a URL (``TRIAGE_DATABASE_URL`` in the service, e.g.
``sqlite:///var/triage.db`` or ``postgresql+psycopg://user@host/db``); one engine per URL is
shared within a process.

Every write is one transaction, committed before the call returns (SQLite: WAL journal,
``synchronous=FULL``), so anything the service acknowledged survives a crash or restart. A
write may also be given an open transaction (``conn``) so that something else — the stored
answer of an idempotent request — commits with it or not at all.

**Cases and their change log.** Every case write adds one ``case_changes`` row per case
(``upsert`` or ``delete``) with an increasing ``seq``, in the same transaction and under the
ordered write lock (:func:`triage.db.writing`), so ``seq`` order is commit order. A worker's
in-memory index follows the log with :class:`CaseFollower`: it reads the changes after the last
``seq`` it applied and applies the *current* rows of the cases they name, all under one lock.
Whatever order requests race in, every index ends equal to the database. On PostgreSQL a write
also sends ``NOTIFY triage_changes`` (delivered at commit), so followers wake up at once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from contextlib import nullcontext as _nullcontext
from datetime import datetime, timedelta, timezone
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage import schema
from triage.db import is_postgres, open_engine, writing
from triage.errors import DataError
from triage.vocab import HEAD_NAMES as CORRECTABLE

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "triage_changes"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:              # SQLite returns naive datetimes; they were written in UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def _notify(conn) -> None:
    if is_postgres(conn.engine):
        conn.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")


class CaseStore:
    def __init__(self, url: str, dim: int) -> None:
        self.url, self.dim = url, dim
        self.engine = open_engine(url)
        self.cases = schema.cases
        self.changes = schema.case_changes

    def count(self) -> int:
        from sqlalchemy import func, select
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.cases)).scalar_one())

    def upsert(self, cases: Sequence[dict], embeddings: NDArray[np.float32], conn=None,
               only_if_empty: bool = False) -> tuple[int, int]:
        """Add or replace cases (by ``case_id``) in one transaction, with one change-log row
        each; returns ``(created, updated)``. ``only_if_empty``: write nothing unless the table
        is empty (seeding, decided under the write lock so concurrent starters seed once)."""
        from sqlalchemy import delete, func, insert, select

        if embeddings.shape != (len(cases), self.dim):
            raise DataError("CASES_SHAPE", f"expected embeddings of shape ({len(cases)}, {self.dim}), "
                            f"got {embeddings.shape}")
        if not len(cases):
            return 0, 0
        now = _now()
        rows = [{"case_id": c["case_id"], "data": json.dumps(c, ensure_ascii=False),
                 "embedding": np.asarray(e, dtype="<f4").tobytes(), "updated_at": now}
                for c, e in zip(cases, embeddings)]
        ids = [r["case_id"] for r in rows]
        with _transaction(self.engine, conn) as c:
            if only_if_empty and c.execute(select(func.count()).select_from(self.cases)).scalar_one():
                return 0, 0
            existing = set(c.execute(select(self.cases.c.case_id).where(self.cases.c.case_id.in_(ids))).scalars())
            c.execute(delete(self.cases).where(self.cases.c.case_id.in_(ids)))
            c.execute(insert(self.cases), rows)
            c.execute(insert(self.changes), [{"case_id": i, "op": "upsert", "changed_at": now} for i in ids])
            _notify(c)
        return len(ids) - len(existing), len(existing)

    def get(self, case_id: str) -> dict | None:
        from sqlalchemy import select
        with self.engine.connect() as conn:
            row = conn.execute(select(self.cases.c.data).where(self.cases.c.case_id == case_id)).first()
        return None if row is None else json.loads(row[0])

    def delete(self, case_id: str, conn=None) -> bool:
        """Delete one case (and log the change); False when there was no such case."""
        from sqlalchemy import delete, insert

        with _transaction(self.engine, conn) as c:
            if c.execute(delete(self.cases).where(self.cases.c.case_id == case_id)).rowcount == 0:
                return False
            c.execute(insert(self.changes), [{"case_id": case_id, "op": "delete", "changed_at": _now()}])
            _notify(c)
        return True

    def last_seq(self) -> int:
        from sqlalchemy import func, select
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(self.changes.c.seq), 0))).scalar_one())

    def changes_since(self, seq: int, limit: int = 10_000) -> list[tuple[int, str]]:
        """``(seq, case_id)`` of the changes after ``seq``, oldest first."""
        from sqlalchemy import select
        ch = self.changes
        with self.engine.connect() as conn:
            return [(int(s), i) for s, i in conn.execute(select(ch.c.seq, ch.c.case_id).where(ch.c.seq > seq)
                                                         .order_by(ch.c.seq).limit(limit)).all()]

    def rows(self, case_ids: Sequence[str] | None = None) -> tuple[list[dict], NDArray[np.float32]]:
        """The stored cases (all, or those of ``case_ids`` that exist) and their embeddings."""
        from sqlalchemy import select
        query = select(self.cases.c.data, self.cases.c.embedding).order_by(self.cases.c.case_id)
        if case_ids is not None:
            query = query.where(self.cases.c.case_id.in_(list(case_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        cases = [json.loads(d) for d, _ in rows]
        emb = np.frombuffer(b"".join(e for _, e in rows), dtype="<f4").reshape(len(rows), self.dim) \
            if rows else np.zeros((0, self.dim), np.float32)
        return cases, emb.astype(np.float32)

    def load_all(self) -> tuple[list[dict], NDArray[np.float32]]:
        return self.rows()


class CaseFollower:
    """Keeps one in-memory index equal to the database by applying the change log in order.

    ``seq`` is the last change applied. :meth:`load` fills the index (the log position is read
    *before* the rows, so the rows are at least that new); :meth:`catch_up` applies what came
    since. Both run under one lock, and a request that wrote a case calls :meth:`catch_up`
    after its commit, so its own change is searchable when it answers."""

    def __init__(self, store: CaseStore, index) -> None:
        self.store, self.index = store, index
        self.seq = 0
        self._lock = threading.Lock()

    def load(self) -> int:
        with self._lock:
            seq = self.store.last_seq()
            cases, emb = self.store.rows()
            for case_id in [c["case_id"] for c in self.index.snapshot()[0]]:
                self.index.remove(case_id)
            if cases:
                self.index.upsert(cases, emb)
            self.seq = seq
            return len(cases)

    def catch_up(self) -> int:
        """Apply the changes after ``seq``; returns how many change rows were read."""
        with self._lock:
            changes = self.store.changes_since(self.seq)
            if not changes:
                return 0
            ids = list(dict.fromkeys(case_id for _, case_id in changes))
            cases, emb = self.store.rows(ids)
            present = {c["case_id"] for c in cases}
            for case_id in ids:
                if case_id not in present:
                    self.index.remove(case_id)
            if cases:
                self.index.upsert(cases, emb)
            self.seq = changes[-1][0]
            return len(changes)


class ServingLog:
    """Reload decisions: which bundle folder every worker serves (the newest decision wins)."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.table = schema.bundle_decisions

    def decide(self, bundle: str, model_version: str, decided_by: str) -> int:
        from sqlalchemy import insert
        with writing(self.engine, ordered=True) as conn:
            seq = conn.execute(insert(self.table).values(bundle=bundle, model_version=model_version,
                                                         decided_at=_now(), decided_by=decided_by)
                               .returning(self.table.c.seq)).scalar_one()
            _notify(conn)
        return int(seq)

    def latest(self) -> dict | None:
        from sqlalchemy import select
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).order_by(t.c.seq.desc()).limit(1)).mappings().first()
        return None if row is None else {"seq": int(row["seq"]), "bundle": row["bundle"],
                                         "model_version": row["model_version"],
                                         "decided_at": _iso(row["decided_at"]), "decided_by": row["decided_by"]}


class IdempotencyStore:
    """Answers of writes sent with an ``Idempotency-Key``, per caller; each is inserted in the
    transaction of its write, so a retry finds the answer exactly when the write committed."""

    def __init__(self, url: str, keep_days: int = 7) -> None:
        self.engine = open_engine(url)
        self.table = schema.idempotency
        self.keep_days = keep_days

    def find(self, principal: str, key: str) -> dict | None:
        from sqlalchemy import select
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.principal == principal, t.c.key == key)).mappings().first()
        return None if row is None else {"route": row["route"], "request_sha256": row["request_sha256"],
                                         "status": int(row["status"]), "body": json.loads(row["body"])}

    def save(self, conn, principal: str, key: str, route: str, request_sha256: str, status: int, body) -> None:
        from sqlalchemy import insert
        conn.execute(insert(self.table).values(principal=principal, key=key, route=route,
                                               request_sha256=request_sha256, status=status,
                                               body=json.dumps(body, ensure_ascii=False), created_at=_now()))

    def purge(self, now: datetime | None = None) -> int:
        from sqlalchemy import delete
        cutoff = (now or _now()) - timedelta(days=self.keep_days)
        with writing(self.engine) as conn:
            return conn.execute(delete(self.table).where(self.table.c.created_at < cutoff)).rowcount


class _transaction:
    """``conn`` when the caller gives an open transaction, else a new ordered write transaction."""

    def __init__(self, engine, conn) -> None:
        self.engine, self.conn, self._cm = engine, conn, None

    def __enter__(self):
        if self.conn is not None:
            return self.conn
        self._cm = writing(self.engine, ordered=True)
        return self._cm.__enter__()

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc) if self._cm is not None else False


# The parts of an answer kept with a prediction (not the similar cases, evidence or reply draft).
RECORDED_FIELDS = ("complaint_type", "type_candidates", "severity", "emotion", "intensity", "needs_review",
                   "review_reasons")


class PredictionLog:
    """Predictions and feedback. ``retention_days``: how long prediction texts are kept
    (``-1`` for ever, ``0`` never stored — only their sha256)."""

    def __init__(self, url: str, retention_days: int = 90) -> None:
        self.url, self.retention_days = url, retention_days
        self.engine = open_engine(url)
        self.predictions = schema.predictions
        self.feedback = schema.feedback
        self._last_purge = 0.0

    def record(self, answers: Sequence[dict], texts: Sequence[str], channels: Sequence[str | None] | None = None,
               model_version: str = "") -> list[str]:
        """Store a batch of answers in one transaction; returns their new prediction ids."""
        from sqlalchemy import insert

        if len(answers) != len(texts):
            raise DataError("PREDICTIONS_SHAPE", f"{len(answers)} answers but {len(texts)} texts")
        channels = list(channels) if channels is not None else [None] * len(texts)
        now = _now()
        ids = [f"p-{uuid.uuid4().hex}" for _ in answers]
        rows = [{"prediction_id": pid, "created_at": now, "model_version": a.get("model_version") or model_version,
                 "request_id": a.get("id"), "channel": ch, "text": t if self.retention_days != 0 else None,
                 "text_sha256": hashlib.sha256(t.encode("utf-8")).hexdigest(),
                 "answer": json.dumps({k: a.get(k) for k in RECORDED_FIELDS}, ensure_ascii=False)}
                for pid, a, t, ch in zip(ids, answers, texts, channels)]
        if rows:
            with writing(self.engine) as conn:
                conn.execute(insert(self.predictions), rows)
        self._maybe_purge()
        return ids

    def _maybe_purge(self) -> None:
        import time
        if self.retention_days > 0 and time.monotonic() - self._last_purge > 3600:
            self._last_purge = time.monotonic()
            self.purge_texts()

    def purge_texts(self, now: datetime | None = None) -> int:
        """Blank the texts of predictions older than the retention period; returns how many."""
        from sqlalchemy import update

        if self.retention_days < 0:
            return 0
        cutoff = (now or _now()) - timedelta(days=self.retention_days)
        with writing(self.engine) as conn:
            return conn.execute(update(self.predictions)
                                .where(self.predictions.c.created_at < cutoff, self.predictions.c.text.is_not(None))
                                .values(text=None)).rowcount

    def get(self, prediction_id: str) -> dict | None:
        """The prediction with its feedback, oldest first; None if unknown."""
        from sqlalchemy import select

        p, f = self.predictions, self.feedback
        with self.engine.connect() as conn:
            row = conn.execute(select(p).where(p.c.prediction_id == prediction_id)).mappings().first()
            if row is None:
                return None
            fb = conn.execute(select(f).where(f.c.prediction_id == prediction_id)
                              .order_by(f.c.created_at, f.c.feedback_id)).mappings().all()
        return {"prediction_id": row["prediction_id"], "created_at": _iso(row["created_at"]),
                "model_version": row["model_version"], "request_id": row["request_id"], "channel": row["channel"],
                "text": row["text"], "text_sha256": row["text_sha256"], "prediction": json.loads(row["answer"]),
                "feedback": [self._feedback_dict(r) for r in fb]}

    @staticmethod
    def _feedback_dict(r) -> dict:
        return {"feedback_id": r["feedback_id"], "prediction_id": r["prediction_id"], "created_at": _iso(r["created_at"]),
                "reviewer": r["reviewer"], "reason": r["reason"], "corrections": json.loads(r["corrections"])}

    def add_feedback(self, prediction_id: str, corrections: dict, reviewer: str, reason: str | None = None,
                     conn=None) -> dict:
        """Record a correction of one or more fields (in ``conn``'s transaction when given);
        raises DataError for an unknown prediction or an empty correction."""
        from sqlalchemy import insert, select

        corrections = {k: v for k, v in corrections.items() if v is not None}
        unknown = sorted(set(corrections) - set(CORRECTABLE))
        if unknown:
            raise DataError("FEEDBACK_FIELD", f"cannot correct {unknown}; correctable fields are {list(CORRECTABLE)}")
        if not corrections:
            raise DataError("FEEDBACK_EMPTY", f"give at least one of {list(CORRECTABLE)} to correct")
        p = self.predictions
        with (_nullcontext(conn) if conn is not None else writing(self.engine)) as conn:
            row = conn.execute(select(p.c.text).where(p.c.prediction_id == prediction_id)).first()
            if row is None:
                raise DataError("PREDICTION_NOT_FOUND", f"no prediction with id {prediction_id!r}")
            values = {"feedback_id": f"f-{uuid.uuid4().hex}", "prediction_id": prediction_id, "created_at": _now(),
                      "reviewer": reviewer, "reason": reason,
                      "corrections": json.dumps(corrections, ensure_ascii=False), "text": row[0]}
            conn.execute(insert(self.feedback), [values])
        return self._feedback_dict(values)

    def training_records(self) -> tuple[list[dict], dict]:
        """One labelled record per corrected prediction (later corrections of a field win), and
        counts of what was used and skipped."""
        from sqlalchemy import select

        f = self.feedback
        with self.engine.connect() as conn:
            rows = conn.execute(select(f.c.prediction_id, f.c.corrections, f.c.text)
                                .order_by(f.c.created_at, f.c.feedback_id)).all()
        merged: dict[str, dict] = {}
        for pid, corr, text in rows:
            rec = merged.setdefault(pid, {"id": f"fb-{pid}"})
            rec.update(json.loads(corr))
            if text:
                rec["text"] = text
        records = [r for r in merged.values() if r.get("text")]
        return records, {"feedback": len(rows), "predictions": len(merged), "usable": len(records),
                         "skipped_no_text": len(merged) - len(records)}

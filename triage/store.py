"""Durable storage (SQLAlchemy core; SQLite by default): the knowledge base, and the record of
predictions and supervisors' feedback.

The database is named by a URL (``TRIAGE_DATABASE_URL`` in the service, e.g.
``sqlite:///var/triage.db`` or ``postgresql+psycopg://…``); one engine per URL is shared.
Tables:

- ``cases``: the case as JSON, its passage embedding as float32 bytes, when it was last written.
- ``predictions``: every triage answer — id, time, model version, the caller's id and channel,
  the answer's labels and scores as JSON, the text's sha256, and the text itself while the
  retention setting allows (:meth:`PredictionLog.purge_texts` blanks older texts).
- ``feedback``: a supervisor's correction of any of type/severity/emotion/intensity, with
  reviewer, reason and time, linked to its prediction; the prediction is never modified, so
  both the model's answer and the human decision are kept. The feedback row keeps a copy of the
  text (when it was still retained) because corrections are training data.

Every write is one transaction, committed before the call returns (SQLite: WAL journal,
``synchronous=FULL``), so anything the service acknowledged survives a crash or restart.
"""
from __future__ import annotations

import json
import hashlib
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.errors import DataError
from triage.vocab import HEAD_NAMES as CORRECTABLE


_ENGINES: dict = {}
_ENGINES_LOCK = threading.Lock()


def open_engine(url: str):
    """The shared SQLAlchemy engine for ``url`` (created on first use)."""
    from sqlalchemy import create_engine, event

    with _ENGINES_LOCK:
        if url in _ENGINES:
            return _ENGINES[url]
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(url, future=True)
        except Exception as exc:  # noqa: BLE001 - bad URL or missing driver
            raise DataError("DATABASE_URL", f"cannot open database {url!r}: {exc}") from exc
        if url.startswith("sqlite"):
            @event.listens_for(engine, "connect")
            def _pragmas(conn, _record):  # durable and concurrent enough for one service
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()
        _ENGINES[url] = engine
        return engine


class CaseStore:
    def __init__(self, url: str, dim: int) -> None:
        from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, Text

        self.url, self.dim = url, dim
        self.engine = open_engine(url)
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


# The parts of an answer kept with a prediction (not the similar cases, evidence or reply draft).
RECORDED_FIELDS = ("complaint_type", "type_candidates", "severity", "emotion", "intensity", "needs_review",
                   "review_reasons")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:              # SQLite returns naive datetimes; they were written in UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


class PredictionLog:
    """Predictions and feedback. ``retention_days``: how long prediction texts are kept
    (``-1`` for ever, ``0`` never stored — only their sha256)."""

    def __init__(self, url: str, retention_days: int = 90) -> None:
        from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text

        self.url, self.retention_days = url, retention_days
        self.engine = open_engine(url)
        self.meta = MetaData()
        self.predictions = Table("predictions", self.meta,
                                 Column("prediction_id", String(40), primary_key=True),
                                 Column("created_at", DateTime(timezone=True), nullable=False, index=True),
                                 Column("model_version", String(100), nullable=False),
                                 Column("request_id", String(200)),
                                 Column("channel", String(50)),
                                 Column("text", Text),
                                 Column("text_sha256", String(64), nullable=False),
                                 Column("answer", Text, nullable=False))
        self.feedback = Table("feedback", self.meta,
                              Column("feedback_id", String(40), primary_key=True),
                              Column("prediction_id", String(40), nullable=False),
                              Column("created_at", DateTime(timezone=True), nullable=False),
                              Column("reviewer", String(200), nullable=False),
                              Column("reason", Text),
                              Column("corrections", Text, nullable=False),
                              Column("text", Text),
                              Index("ix_feedback_prediction", "prediction_id"))
        self.meta.create_all(self.engine)
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
            with self.engine.begin() as conn:
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
        with self.engine.begin() as conn:
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

    def add_feedback(self, prediction_id: str, corrections: dict, reviewer: str, reason: str | None = None) -> dict:
        """Record a correction of one or more fields; raises DataError for an unknown prediction
        or an empty correction."""
        from sqlalchemy import insert, select

        corrections = {k: v for k, v in corrections.items() if v is not None}
        unknown = sorted(set(corrections) - set(CORRECTABLE))
        if unknown:
            raise DataError("FEEDBACK_FIELD", f"cannot correct {unknown}; correctable fields are {list(CORRECTABLE)}")
        if not corrections:
            raise DataError("FEEDBACK_EMPTY", f"give at least one of {list(CORRECTABLE)} to correct")
        p = self.predictions
        with self.engine.begin() as conn:
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

"""Hybrid similar-case search over the knowledge base: dense e5 + BM25 over jieba tokens.

Scoring, per query:

1. **Candidates**: among the cases that pass the filters, the ``candidates`` best by dense
   cosine (complaint ``query:`` vector against case ``passage:`` vectors) and the
   ``candidates`` best by BM25 (bm25s over jieba tokens of the normalised text).
2. **Fusion**: reciprocal rank, ``w_dense / (rrf_k + rank_dense) + w_bm25 / (rrf_k + rank_bm25)``.
3. **Outcome boost**: the fused score is multiplied by ``1 + outcome_boost[outcome]``, so a
   resolution that satisfied the customer ranks above one that led to a repeat complaint.
4. **Relevance floor**: a hit whose dense cosine is below ``min_similarity`` is not returned
   (in every mode), so "nothing similar" is an empty list, not an unrelated case.
5. **Near duplicates** are collapsed: a hit whose text is the same after normalisation, or
   whose vector has cosine ≥ ``duplicate_cosine`` with a better hit, is folded into it
   (its id is listed under ``duplicates``).

Filters: ``complaint_type``, ``severity``, ``industry`` (a value or a list), ``metadata``
(key → value or list of values, exact match), ``date_from`` / ``date_to`` (ISO dates,
inclusive). The index is in memory and updated in place; :mod:`triage.store` makes it durable.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from triage.errors import InputError
from triage.segment import Segmenter
from triage.text import normalise

Mode = Literal["hybrid", "dense", "bm25"]
CASE_FIELDS = ("case_id", "text", "complaint_type", "severity", "finding", "resolution",
               "response", "outcome", "industry", "metadata", "date")
OUTCOMES = ("satisfied", "not_satisfied", "complained_again")


class RetrievalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: int = Field(100, ge=1, le=10_000)
    rrf_k: float = Field(60.0, gt=0)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    outcome_boost: dict[str, float] = Field(default_factory=lambda: {
        "satisfied": 0.10, "not_satisfied": 0.0, "complained_again": -0.10})
    min_similarity: float = Field(0.80, ge=-1, le=1)
    duplicate_cosine: float = Field(0.97, gt=0, le=1)


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaint_type: str | list[str] | None = None
    severity: str | list[str] | None = None
    industry: str | list[str] | None = None
    metadata: dict[str, str | list[str]] | None = None
    date_from: date | None = None
    date_to: date | None = None


def _as_set(v: str | list[str] | None) -> set[str] | None:
    return None if v is None else ({v} if isinstance(v, str) else set(v))


def _ordinal(value) -> int:
    try:
        return date.fromisoformat(str(value)[:10]).toordinal()
    except (TypeError, ValueError):
        return -1


@dataclass
class HybridIndex:
    segmenter: Segmenter
    dim: int
    params: RetrievalParams = field(default_factory=RetrievalParams)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._cases: list[dict | None] = []          # row -> case (None when deleted)
        self._rows: dict[str, int] = {}               # case_id -> row
        self._emb = np.zeros((0, self.dim), dtype=np.float32)
        self._tokens: list[list[str]] = []
        self._norm: list[str] = []
        self._dates = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._fields: dict[str, np.ndarray] = {}      # complaint_type/severity/industry per row
        self._bm25 = None
        self._bm25_rows = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ updates
    def __len__(self) -> int:
        return len(self._rows)

    def get(self, case_id: str) -> dict | None:
        with self._lock:
            row = self._rows.get(case_id)
            return None if row is None else dict(self._cases[row])

    def upsert(self, cases: Sequence[dict], embeddings: NDArray[np.float32]) -> tuple[int, int]:
        """Add or replace cases (by ``case_id``); returns ``(created, updated)``."""
        if len(cases) != embeddings.shape[0]:
            raise InputError("CASES_SHAPE", f"{len(cases)} cases but {embeddings.shape[0]} embeddings")
        tokens = [self.segmenter.cut(c["text"]) for c in cases]
        created = updated = 0
        with self._lock:
            new_rows = []
            for c, emb, tok in zip(cases, embeddings, tokens):
                case = {k: c[k] for k in CASE_FIELDS if c.get(k) is not None}
                row = self._rows.get(case["case_id"])
                if row is None:
                    row = len(self._cases)
                    self._cases.append(case)
                    self._tokens.append(tok)
                    self._norm.append("".join(normalise(case["text"]).split()))
                    self._rows[case["case_id"]] = row
                    new_rows.append(emb)
                    created += 1
                else:
                    self._cases[row] = case
                    self._tokens[row] = tok
                    self._norm[row] = "".join(normalise(case["text"]).split())
                    self._emb[row] = emb
                    updated += 1
            if new_rows:
                self._emb = np.concatenate([self._emb, np.asarray(new_rows, dtype=np.float32)])
            self._refresh_arrays()
            self._bm25 = None                          # rebuilt on the next search
        return created, updated

    def remove(self, case_id: str) -> bool:
        with self._lock:
            row = self._rows.pop(case_id, None)
            if row is None:
                return False
            self._cases[row] = None
            self._tokens[row] = []
            self._emb[row] = 0.0
            self._alive[row] = False
            self._bm25 = None
            return True

    def _refresh_arrays(self) -> None:
        self._dates = np.array([_ordinal(c.get("date")) if c else -1 for c in self._cases], dtype=np.int64)
        self._alive = np.array([c is not None for c in self._cases], dtype=bool)
        self._fields = {key: np.array([(c or {}).get(key) or "" for c in self._cases], dtype=object)
                        for key in ("complaint_type", "severity", "industry")}

    def _bm25_index(self):
        if self._bm25 is None:
            import bm25s

            rows = np.array([r for r, c in enumerate(self._cases) if c is not None], dtype=np.int64)
            model = bm25s.BM25()
            if len(rows):
                model.index([self._tokens[r] or ["<empty>"] for r in rows], show_progress=False)
            self._bm25, self._bm25_rows = model, rows
        return self._bm25

    # ------------------------------------------------------------------ search
    def _mask(self, filters: Filters | None) -> NDArray[np.bool_]:
        mask = self._alive.copy()
        if filters is None:
            return mask
        for key in ("complaint_type", "severity", "industry"):
            allowed = _as_set(getattr(filters, key))
            if allowed is not None:
                mask &= np.isin(self._fields[key], list(allowed))
        for key, value in (filters.metadata or {}).items():
            allowed = _as_set(value)
            mask &= np.array([c is not None and str((c.get("metadata") or {}).get(key)) in allowed
                              for c in self._cases], dtype=bool)
        if filters.date_from is not None:
            mask &= self._dates >= filters.date_from.toordinal()
        if filters.date_to is not None:
            mask &= (self._dates <= filters.date_to.toordinal()) & (self._dates >= 0)
        return mask

    def search(self, text: str, vector: NDArray[np.float32], k: int = 5, filters: Filters | None = None,
               mode: Mode = "hybrid") -> list[dict]:
        """Up to ``k`` hits for one complaint, best first (see the module docstring)."""
        if k < 1:
            return []
        p = self.params
        q_tokens = self.segmenter.cut(text)
        with self._lock:
            if not self._rows:
                return []
            mask = self._mask(filters)
            if not mask.any():
                return []
            dense = self._emb @ vector.astype(np.float32)
            fused = np.zeros(len(self._cases), dtype=np.float64)
            bm25_scores = np.zeros(len(self._cases), dtype=np.float32)
            if mode in ("hybrid", "dense"):
                d = np.where(mask, dense, -np.inf)
                top = _top(d, p.candidates)
                fused[top] += p.dense_weight / (p.rrf_k + np.arange(1, len(top) + 1))
            if mode in ("hybrid", "bm25"):
                model = self._bm25_index()
                if len(self._bm25_rows) and q_tokens:
                    bm25_scores[self._bm25_rows] = model.get_scores(q_tokens)
                b = np.where(mask & (bm25_scores > 0), bm25_scores, -np.inf)
                top = _top(b, p.candidates)
                fused[top] += p.bm25_weight / (p.rrf_k + np.arange(1, len(top) + 1))
            rows = np.flatnonzero((fused > 0) & (dense >= p.min_similarity))
            boost = np.array([1.0 + p.outcome_boost.get(self._cases[r].get("outcome", ""), 0.0) for r in rows])
            final = fused[rows] * boost
            order = rows[np.argsort(-final, kind="stable")]
            final_by_row = dict(zip(rows.tolist(), final.tolist()))
            hits: list[dict] = []
            kept: list[int] = []
            q_set = set(q_tokens)
            for r in order:
                dup_of = next((h for h, kr in zip(hits, kept) if self._norm[kr] == self._norm[r]
                               or float(self._emb[kr] @ self._emb[r]) >= p.duplicate_cosine), None)
                if dup_of is not None:
                    dup_of.setdefault("duplicates", []).append(self._cases[r]["case_id"])
                    continue
                matched = sorted(q_set & set(self._tokens[r]), key=len, reverse=True)
                hits.append({**self._cases[r], "score": round(final_by_row[int(r)], 6),
                             "dense_score": round(float(dense[r]), 4), "bm25_score": round(float(bm25_scores[r]), 4),
                             "matched": {"terms": [t for t in matched if len(t.strip()) > 1][:10]}})
                kept.append(int(r))
                if len(hits) >= k:
                    break
            return hits

    def snapshot(self) -> tuple[list[dict], NDArray[np.float32]]:
        """The live cases and their vectors (for saving)."""
        with self._lock:
            rows = [r for r, c in enumerate(self._cases) if c is not None]
            return [dict(self._cases[r]) for r in rows], self._emb[rows].copy()


def _top(scores: NDArray, n: int) -> NDArray[np.int64]:
    """Indices of the ``n`` largest finite scores, best first."""
    finite = np.isfinite(scores)
    count = int(finite.sum())
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    n = min(n, count)
    idx = np.argpartition(-np.where(finite, scores, -np.inf), n - 1)[:n]
    return idx[np.argsort(-scores[idx], kind="stable")]

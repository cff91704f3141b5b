"""Similar-case index over the knowledge base: past complaints with their resolutions.

Cases are embedded once as ``passage: `` texts; a complaint's ``query: `` embedding (the same
vector the heads use) is compared by cosine similarity. Hits below ``min_score`` are not
returned, so an answer with nothing similar says so instead of suggesting something unrelated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.errors import InputError

CASE_FIELDS = ("case_id", "text", "complaint_type", "severity", "finding", "resolution",
               "response", "outcome", "industry", "metadata", "date")


@dataclass
class CaseIndex:
    cases: list[dict] = field(default_factory=list)
    embeddings: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    @classmethod
    def build(cls, cases: Sequence[dict], embeddings: NDArray[np.float32]) -> "CaseIndex":
        if len(cases) != embeddings.shape[0]:
            raise InputError("CASES_SHAPE", f"{len(cases)} cases but {embeddings.shape[0]} embeddings")
        return cls([{k: c.get(k) for k in CASE_FIELDS if c.get(k) is not None} for c in cases],
                   np.ascontiguousarray(embeddings, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.cases)

    def search(self, queries: NDArray[np.float32], k: int, min_score: float = 0.0) -> list[list[dict]]:
        """For each query row, up to ``k`` hits ``{case_id, text, resolution, response,
        outcome, score, …}``, best first."""
        if not len(self.cases) or k <= 0:
            return [[] for _ in range(len(queries))]
        scores = queries @ self.embeddings.T
        out = []
        for row in scores:
            top = np.argsort(-row)[:k]
            out.append([{**self.cases[j], "score": round(float(row[j]), 4)} for j in top if row[j] >= min_score])
        return out

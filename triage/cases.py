"""The knowledge-base cases a bundle ships with, and their passage embeddings.

Searching them is :mod:`triage.retrieval`'s job; this is the container that is trained,
saved into a bundle and loaded back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.errors import InputError

from triage.retrieval import CASE_FIELDS


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

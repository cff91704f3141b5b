"""Approximate nearest neighbours for the dense side of similar-case search.

:class:`DenseANN` is an HNSW graph (the ``usearch`` library) over the knowledge base's case
vectors, keyed by their row in :class:`~triage.retrieval.HybridIndex`. It only proposes
candidates: the index rescores what it returns exactly against its own fp32 vectors, so the
graph may store its vectors compactly (``i8``, one byte a dimension, by default) without changing
any score a caller sees. It is kept in step with the cases: a new case is added, a changed one
replaced, a deleted one removed, each at once (HNSW needs no retraining as the collection grows).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from usearch.index import Index


class DenseANN:
    """``DenseANN(384).add(rows, vectors)``, then ``search(vector, 200)`` → up to 200 rows whose
    vectors are probably the nearest by inner product (cosine, for unit vectors)."""

    def __init__(self, dim: int, connectivity: int = 16, expansion_add: int = 128,
                 expansion_search: int = 256, dtype: str = "i8", threads: int = 0) -> None:
        self.dim = dim
        self._threads = threads          # for bulk adds; 0: every core
        self._expansion = expansion_search
        self._index = Index(ndim=dim, metric="ip", dtype=dtype, connectivity=connectivity,
                            expansion_add=expansion_add, expansion_search=expansion_search)

    def __len__(self) -> int:
        return len(self._index)

    def add(self, rows: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``vectors`` under keys ``rows``; a row already present is replaced."""
        rows = np.asarray(rows, dtype=np.uint64)
        if not len(rows):
            return
        present = np.asarray(self._index.contains(rows), dtype=bool).reshape(-1)
        if present.any():
            self._index.remove(rows[present])
        self._index.add(rows, np.ascontiguousarray(vectors, dtype=np.float32), threads=self._threads)

    def remove(self, rows: NDArray[np.int64]) -> None:
        rows = np.asarray(rows, dtype=np.uint64)
        present = np.asarray(self._index.contains(rows), dtype=bool).reshape(-1)
        if present.any():
            self._index.remove(rows[present])

    def search(self, vector: NDArray[np.float32], count: int) -> NDArray[np.int64]:
        """Rows of about the ``count`` nearest vectors (best first by the graph's own, compact
        scores; rescore them exactly before use)."""
        if not len(self._index) or count < 1:
            return np.zeros(0, dtype=np.int64)
        want = max(self._expansion, count)          # the beam must hold every result asked for
        if self._index.expansion_search != want:
            self._index.expansion_search = want
        found = self._index.search(np.ascontiguousarray(vector, dtype=np.float32), count, threads=1)
        return np.asarray(found.keys, dtype=np.int64)

"""Approximate nearest neighbours for the dense side of similar-case search.

:class:`DenseANN` is an HNSW graph (faiss ``IndexHNSWFlat``, inner product) over the knowledge
base's case vectors. It only proposes candidates: :class:`~triage.retrieval.HybridIndex`
rescores what it returns exactly against its own vectors. It is kept in step with the cases at
once: a new case is inserted into the graph; a changed case is inserted again and its old node
retired; a deleted case's node is retired. Retired nodes stay in the graph as waypoints (HNSW
cannot unlink a node) but are never returned: searches pass faiss a bitmap of the nodes that may
answer, which also carries the caller's filters. When retired nodes outnumber the current ones,
:meth:`worn` says so and the owner rebuilds the graph from its current vectors.
"""
from __future__ import annotations

import faiss
import numpy as np
from numpy.typing import NDArray


class DenseANN:
    """``DenseANN(384).add(rows, vectors)``, then ``search(vector, 200)`` → up to 200 rows whose
    vectors are probably the nearest by inner product (cosine, for unit vectors)."""

    def __init__(self, dim: int, connectivity: int = 32, expansion_add: int = 80,
                 expansion_search: int = 128) -> None:
        self.dim = dim
        self._index = faiss.IndexHNSWFlat(dim, connectivity, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = expansion_add
        self._expansion = expansion_search
        self._rows = np.zeros(0, dtype=np.int64)       # node -> the row it holds
        self._current = np.zeros(0, dtype=bool)        # node still holds its row's vector
        self._node: dict[int, int] = {}                # row -> its current node

    def __len__(self) -> int:
        return len(self._node)

    def worn(self) -> bool:
        """Whether retired nodes outnumber current ones (time to rebuild)."""
        return len(self._rows) > 2 * max(len(self._node), 1)

    def add(self, rows: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Insert ``vectors`` for ``rows``; a row already present gets the new vector."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        for r in rows.tolist():
            old = self._node.get(r)
            if old is not None:
                self._current[old] = False
        first = self._index.ntotal
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._rows = np.concatenate([self._rows, rows])
        self._current = np.concatenate([self._current, np.ones(len(rows), dtype=bool)])
        self._node.update(zip(rows.tolist(), range(first, first + len(rows))))

    def remove(self, rows: NDArray[np.int64]) -> None:
        for r in np.asarray(rows, dtype=np.int64).tolist():
            node = self._node.pop(r, None)
            if node is not None:
                self._current[node] = False

    def search(self, vector: NDArray[np.float32], count: int,
               allowed: NDArray[np.bool_] | None = None) -> NDArray[np.int64]:
        """Rows of about the ``count`` nearest current vectors, best first; ``allowed`` (one
        flag per row) keeps the search to those rows."""
        if not self._node or count < 1:
            return np.zeros(0, dtype=np.int64)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self._expansion, count)          # the beam holds every result asked for
        may = self._current if allowed is None else self._current & allowed[self._rows]
        if allowed is not None or not may.all():
            bitmap = np.packbits(may, bitorder="little")
            params.sel = selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        _, nodes = self._index.search(np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1), count,
                                      params=params)
        nodes = nodes[0]
        return self._rows[nodes[nodes >= 0]]

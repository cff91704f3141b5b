"""A tiny deterministic offline encoder for fast unit tests (not for serving).

Character uni- and bi-grams are hashed into ``dim`` buckets with a signed hash, then the
vector is L2-normalised. Texts that share characters get similar vectors, which is enough
to exercise every code path that consumes embeddings without loading a transformer.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.encoder.base import Kind, check_texts


class HashingEncoder:
    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hashing-test.v1-{dim}"

    def _bucket(self, gram: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def encode(self, texts: Sequence[str], kind: Kind = "query") -> NDArray[np.float32]:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            chars = "".join(text.split())
            grams = list(chars) + [chars[j:j + 2] for j in range(len(chars) - 1)]
            for g in grams:
                b, s = self._bucket(g)
                out[i, b] += s
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
            else:
                out[i, 0] = 1.0
        return out

"""A content-addressed embedding cache: a retrain or re-evaluation encodes only new texts.

Vectors are keyed by sha256 of ``kind + "\\0" + text`` and stored per encoder identity (name
and weights fingerprint) in ``$TRIAGE_CACHE_DIR/embeddings/`` (git-ignored). The store is a
pair of files written atomically: ``keys.txt`` (one hex key a line) and ``vectors.npy``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.encoder.base import Encoder, Kind, check_texts
from triage.paths import cache_dir

log = logging.getLogger(__name__)


def default_cache_root() -> Path:
    return cache_dir() / "embeddings"


def _key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode("utf-8")).hexdigest()


class EmbeddingCache:
    """``EmbeddingCache(encoder).encode(texts, kind)`` — same contract as the encoder."""

    def __init__(self, encoder: Encoder, root: str | Path | None = None) -> None:
        self.encoder = encoder
        ident = f"{encoder.name}-{(getattr(encoder, 'fingerprint', None) or 'nofp')[-16:]}"
        if getattr(encoder, "variant", "fp32") != "fp32":       # e.g. int8: other vectors, another store
            ident += f"-{encoder.variant}"
        self.dir = Path(root or default_cache_root()) / re.sub(r"[^A-Za-z0-9._-]+", "_", ident)
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, encoder.dim), dtype=np.float32)
        self._load()
        self.hits = self.misses = 0

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def fingerprint(self) -> str | None:
        return getattr(self.encoder, "fingerprint", None)

    def _load(self) -> None:
        keys, vecs = self.dir / "keys.txt", self.dir / "vectors.npy"
        if not (keys.is_file() and vecs.is_file()):
            return
        try:
            k = keys.read_text().split()
            v = np.load(vecs)
            if v.shape != (len(k), self.encoder.dim):
                raise ValueError(f"{len(k)} keys but vectors of shape {v.shape}")
        except (OSError, ValueError) as exc:
            log.warning("embedding cache %s is damaged (%s); starting afresh", self.dir, exc)
            return
        self._index = {key: i for i, key in enumerate(k)}
        self._vectors = v.astype(np.float32)

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = [None] * len(self._index)
        for key, i in self._index.items():
            keys[i] = key
        for name, write in (("vectors.npy", lambda f: np.save(f, self._vectors)),
                            ("keys.txt", lambda f: f.write("\n".join(keys).encode()))):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.dir)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, self.dir / name)

    def encode(self, texts: Sequence[str], kind: Kind = "query", chunk: int = 64,
               progress: bool = False) -> NDArray[np.float32]:
        """Rows for ``texts``; only texts not seen before are encoded (in chunks of ``chunk``,
        with a progress bar when ``progress``), and the store is saved once at the end."""
        texts = check_texts(texts)
        keys = [_key(kind, t) for t in texts]
        with self._lock:
            missing = list({k: t for k, t in zip(keys, texts) if k not in self._index}.items())
            missing.sort(key=lambda kt: len(kt[1]))     # similar lengths share a chunk: less padding
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
            if missing:
                chunks = [missing[i:i + chunk] for i in range(0, len(missing), chunk)]
                if progress:
                    from tqdm import tqdm
                    chunks = tqdm(chunks, desc=f"encoding {len(missing)} new {kind} texts", unit="batch")
                for part in chunks:
                    new = self.encoder.encode([t for _, t in part], kind)
                    base = len(self._index)
                    for j, (k, _) in enumerate(part):
                        self._index[k] = base + j
                    self._vectors = np.concatenate([self._vectors, new.astype(np.float32)])
                self._save()
            return self._vectors[[self._index[k] for k in keys]]

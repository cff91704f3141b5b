"""An ONNX Runtime copy of the sentence-transformers e5-small body, for speed on CPU.

The sentence-transformers model stays the source of truth: its ``BertModel`` plus mean
pooling is exported once to ONNX (``torch.onnx.export``), then ONNX Runtime's transformer
optimiser fuses attention, GELU and skip-layer-norm. Weights stay fp32, so the vectors match
the torch forward pass (the parity test asks cosine ≥ 0.9999). On 2 cores one short complaint
encodes about 2× faster than on torch and batches about 1.2× (``benchmarks/latency.py``
prints both, side by side).

The file lives beside the model folder (``<model>/onnx/e5-mean-opt.onnx``), is stamped with
the model's fingerprint and is rebuilt when that changes. Building it needs the ``onnx``
package and the torch model; running it needs only ``onnxruntime`` and the tokenizer, so an
encoder on this backend does not keep the torch weights in memory. Without these packages
the encoder runs on torch.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from triage.encoder.pooling import mean_pooled
from triage.errors import EncoderError

log = logging.getLogger(__name__)

ONNX_VERSION = "e5onnx.v1"
FILE = "e5-mean-opt.onnx"


def available() -> bool:
    """Whether ONNX Runtime and the exporter's ``onnx`` package are importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _export(bert, hidden: int, heads: int, out: Path) -> None:
    import torch
    from onnxruntime.transformers import optimizer

    class MeanBody(torch.nn.Module):
        """``BertModel`` followed by the torch backend's own mean pooling."""

        def __init__(self, body) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids, attention_mask):
            return mean_pooled(self.body, input_ids, attention_mask)

    ids = torch.ones((2, 8), dtype=torch.long)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(MeanBody(bert).eval(), (ids, torch.ones_like(ids)), str(raw),
                          input_names=["input_ids", "attention_mask"], output_names=["mean"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "mean": {0: "batch"}},
                          opset_version=17, dynamo=False)
        # opt_level 1: the fusions are ONNX Runtime operators, not hardware-specific kernels
        model = optimizer.optimize_model(str(raw), model_type="bert", num_heads=heads,
                                         hidden_size=hidden, opt_level=1)
        model.save_model_to_file(str(out))


def _stamp(fingerprint: str) -> dict:
    """What ``source.json`` beside the ONNX file records: the model it was exported from."""
    return {"fingerprint": fingerprint, "onnx": ONNX_VERSION}


def built(model_dir: Path, fingerprint: str) -> Path | None:
    """The ONNX file for ``model_dir`` if it is there and was exported from this model."""
    folder = model_dir / "onnx"
    path, stamp = folder / FILE, folder / "source.json"
    if path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == _stamp(fingerprint):
                return path
        except ValueError:
            pass
    return None


def ensure_onnx(model_dir: Path, bert, fingerprint: str) -> Path:
    """Build (once, atomically) and return the optimised ONNX file for ``model_dir``."""
    ready = built(model_dir, fingerprint)
    if ready is not None:
        return ready
    folder = model_dir / "onnx"
    log.info("exporting the encoder to ONNX in %s", folder)
    tmp = Path(tempfile.mkdtemp(prefix=".onnx-build-", dir=model_dir))
    try:
        cfg = bert.config
        _export(bert, cfg.hidden_size, cfg.num_attention_heads, tmp / FILE)
        (tmp / "source.json").write_text(json.dumps(_stamp(fingerprint), indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except Exception as exc:  # noqa: BLE001 - reported with the folder it concerns
        raise EncoderError("ENCODER_ONNX_BUILD_FAILED", f"cannot export the encoder to ONNX in {folder}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / FILE


class OnnxBody:
    """``OnnxBody(path)(input_ids, attention_mask)`` → mean-pooled hidden states, ``(n, dim)``."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0          # 0: ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise EncoderError("ENCODER_LOAD_FAILED", f"cannot load the ONNX encoder {path}: {exc}") from exc

    def __call__(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]) -> NDArray[np.float32]:
        return self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

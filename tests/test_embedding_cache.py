import numpy as np

from triage.encoder.cache import EmbeddingCache
from triage.encoder.hashing import HashingEncoder


class Counting(HashingEncoder):
    def __init__(self):
        super().__init__()
        self.encoded = 0

    def encode(self, texts, kind="query"):
        self.encoded += len(texts)
        return super().encode(texts, kind)


def test_only_new_texts_are_encoded_and_the_store_persists(tmp_path):
    enc = Counting()
    cache = EmbeddingCache(enc, tmp_path)
    a = cache.encode(["快递丢了", "刹车失灵", "快递丢了"])
    assert enc.encoded == 2 and cache.misses == 2 and cache.hits == 1
    again = EmbeddingCache(enc, tmp_path)            # a new process would see the same store
    b = again.encode(["刹车失灵", "客服不回复"])
    assert enc.encoded == 3 and again.hits == 1
    assert np.allclose(b[0], a[1]) and np.allclose(b[1], HashingEncoder().encode(["客服不回复"])[0])


def test_kind_is_part_of_the_key(tmp_path):
    enc = Counting()
    cache = EmbeddingCache(enc, tmp_path)
    cache.encode(["同一句话"], "query")
    cache.encode(["同一句话"], "passage")
    assert enc.encoded == 2


def test_damaged_store_starts_afresh(tmp_path):
    enc = Counting()
    cache = EmbeddingCache(enc, tmp_path)
    cache.encode(["一", "二"])
    (cache.dir / "keys.txt").write_text("onlyonekey")
    fresh = EmbeddingCache(enc, tmp_path)
    assert fresh.encode(["一"]).shape == (1, enc.dim) and fresh.misses == 1

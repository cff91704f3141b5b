import pickle

import pytest

from triage.segment import Segmenter


@pytest.fixture(scope="module")
def seg():
    return Segmenter()


@pytest.mark.parametrize("word", ["刹车失灵", "退一赔三", "12315", "砍头息", "爆通讯录", "4s店"])
def test_domain_words_stay_whole(seg, word):
    assert word in seg.cut(f"我的问题是{word}，请处理")


def test_private_tokenizer_does_not_touch_global_jieba():
    import jieba
    before = dict(jieba.dt.FREQ)
    Segmenter().cut("砍头息太高")
    assert jieba.dt.FREQ == before


def test_pickle_drops_and_rebuilds_tokenizer(seg):
    seg.cut("预热")
    clone = pickle.loads(pickle.dumps(seg))
    assert clone._tok is None
    assert clone.cut("刹车失灵了") == seg.cut("刹车失灵了")
    assert clone.dict_sha256 == seg.dict_sha256


@pytest.mark.parametrize("text", ["", "   ", "😡😡", "ＡＢＣ１２３", "mixed 中英 text"])
def test_edge_cases_do_not_fail(seg, text):
    assert all(w.strip() for w in seg.cut(text))

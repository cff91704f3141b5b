import pytest

from triage.errors import InputError
from triage.text import normalise, validate_text


@pytest.mark.parametrize("raw, expected", [
    ("ＡＢＣ退款１２３", "abc退款123"),
    ("刹车失灵！！", "刹车失灵!!"),
    ("a\u200bb", "a b"),
    ("😡太差了", "😡太差了"),
    ("快遞延誤", "快遞延誤"),
])
def test_normalise_maps_char_for_char(raw, expected):
    out = normalise(raw)
    assert out == expected
    assert len(out) == len(raw)


def test_normalise_keeps_length_of_long_mixed_text():
    raw = "订单号ＮＯ．２０２４\t退款 refund ①②③ ㍿ " * 50
    assert len(normalise(raw)) == len(raw)


@pytest.mark.parametrize("bad, code", [(None, "TEXT_NOT_STRING"), (5, "TEXT_NOT_STRING"), ("", "TEXT_EMPTY"),
                                       ("  \n ", "TEXT_EMPTY"), ("长" * 11, "TEXT_TOO_LONG")])
def test_validate_text_rejects_with_code(bad, code):
    with pytest.raises(InputError) as err:
        validate_text(bad, max_chars=10)
    assert err.value.code == code

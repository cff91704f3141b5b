"""A reply draft for the supervisor, built from the replies of the cited similar cases.

No language model: the draft is the reply of the best-ranked similar case whose resolution
satisfied the customer (or, when none did, the best-ranked case with a reply, flagged as such),
with the placeholders ``{customer_name}``, ``{order_id}`` and ``{product}`` filled from the
request where it gave them. When no case is similar enough, the answer says so.

A case's reply is untrusted text: links and contact details are taken out of it
(:func:`triage.untrusted.strip_contacts`) unless the case is marked ``approved``; the answer
lists what was removed under ``removed``.
"""
from __future__ import annotations

import re

from triage.untrusted import strip_contacts

PLACEHOLDER = re.compile(r"\{(customer_name|order_id|product)\}")


def suggest_response(hits: list[dict], fields: dict[str, str | None] | None = None) -> dict:
    fields = {k: v for k, v in (fields or {}).items() if v}
    usable = [h for h in hits if h.get("response")]
    if not usable:
        return {"available": False,
                "reason": "no knowledge-base case is similar enough to suggest a reply"}
    satisfied = [h for h in usable if h.get("outcome") == "satisfied"]
    best = (satisfied or usable)[0]
    missing = sorted({m for m in PLACEHOLDER.findall(best["response"]) if m not in fields})
    reply, removed = strip_contacts(best["response"], approved=bool(best.get("approved")))
    draft = PLACEHOLDER.sub(lambda m: fields.get(m.group(1), m.group(0)), reply)
    why = (f"case {best['case_id']} is the most similar case whose resolution satisfied the customer"
           if satisfied else f"case {best['case_id']} is the most similar case with a reply; no similar "
           "case ended with a satisfied customer, so review the draft with care")
    return {"available": True, "draft": draft, "based_on": [best["case_id"]],
            "also_see": [h["case_id"] for h in usable if h is not best][:2],
            "why": f"{why} (similarity {best.get('dense_score', best.get('score'))})",
            "resolution": best.get("resolution"), "placeholders_missing": missing, "removed": removed}

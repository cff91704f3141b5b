"""``Idempotency-Key`` on writes (feedback, case upserts and deletes).

A write sent with the header runs in one transaction together with the insertion of its answer
under (caller, key). A retry with the same key and the same request gets the stored answer
(header ``Idempotent-Replayed: true``) and writes nothing; the same key with another request is
422 ``IDEMPOTENCY_KEY_REUSED``. Because the answer commits with the write, a write that
committed but whose answer was lost on the way is not repeated by the retry; one that did not
commit left no answer, so the retry runs it. Two concurrent requests with one key: the second
insert fails on the primary key, its transaction (its write included) rolls back, and it
answers the first one's stored answer. Answers are kept ``TRIAGE_IDEMPOTENCY_DAYS``.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from api.errors import ApiError
from triage.db import writing
from triage.keys import Principal
from triage.store import IdempotencyStore

_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def _request_hash(request: Request, payload: Any) -> str:
    route = getattr(request.scope.get("route"), "path", request.url.path)
    text = json.dumps([request.method, route, request.path_params, payload], sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_write(request: Request, principal: Principal, store: IdempotencyStore, payload: Any,
              work: Callable[[Any], tuple[int, Any]], ordered: bool = False) -> tuple[int, Any, bool]:
    """Run ``work(conn)`` → ``(status, body)`` in one write transaction, idempotently when the
    request has an ``Idempotency-Key``. Returns ``(status, body, replayed)``."""
    from sqlalchemy.exc import IntegrityError

    key = request.headers.get("idempotency-key")
    if key is None:
        with writing(store.engine, ordered=ordered) as conn:
            status, body = work(conn)
        return status, body, False
    if not _KEY.match(key):
        raise ApiError("IDEMPOTENCY_KEY_INVALID", "Idempotency-Key must be 1-200 printable ASCII characters "
                       "without spaces")
    digest = _request_hash(request, payload)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    for _ in range(2):
        found = store.find(principal.name, key)
        if found is not None:
            if found["request_sha256"] != digest:
                raise ApiError("IDEMPOTENCY_KEY_REUSED", f"the Idempotency-Key {key!r} was used with another "
                               "request; use a new key for a new request")
            return found["status"], found["body"], True
        try:
            with writing(store.engine, ordered=ordered) as conn:
                status, body = work(conn)
                store.save(conn, principal.name, key, route, digest, status, body)
            return status, body, False
        except IntegrityError:
            continue                         # a concurrent request with this key committed first
    raise ApiError("DATABASE_BUSY", "the idempotent write could not be settled; retry with the same key")


def answer(status: int, body: Any, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if status == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)

"""The request body's first checks, before FastAPI parses it: an ASGI middleware.

- **Size**: a body larger than ``TRIAGE_MAX_BODY_BYTES`` is refused with 413 ``BODY_TOO_LARGE``
  as soon as its ``Content-Length`` says so, or, for a body sent in chunks, as soon as the
  bytes read pass the limit; the rest is never read.
- **Shape**: a JSON body that is not UTF-8, not JSON, or nests deeper than ``MAX_DEPTH``
  levels is 400 ``INVALID_JSON``; a string anywhere in it holding a lone surrogate (``"\\ud800"``,
  not valid Unicode) or a NUL character (PostgreSQL cannot store it) is 422 ``TEXT_INVALID``.

The body read here is handed on unchanged to the application; after it, ``receive`` is the
server's own again (so a route can still notice a client that went away).
"""
from __future__ import annotations

import json

from api.errors import error_body

MAX_DEPTH = 32


class _Refused(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        self.code, self.message, self.status = code, message, status


def _check(value, depth: int = 0, where: str = "body") -> None:
    if depth > MAX_DEPTH:
        raise _Refused("INVALID_JSON", f"the JSON body nests deeper than {MAX_DEPTH} levels", 400)
    if isinstance(value, str):
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            raise _Refused("TEXT_INVALID", f"{where} holds a lone surrogate (not valid Unicode)", 422)
        if "\x00" in value:
            raise _Refused("TEXT_INVALID", f"{where} holds a NUL character (U+0000), which cannot be stored", 422)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check(k, depth + 1, where)
            _check(v, depth + 1, f"{where}.{k}" if where != "body" else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check(v, depth + 1, f"{where}[{i}]")


def inspect_json(body: bytes) -> None:
    """Raise :class:`_Refused` for a body that is not UTF-8 JSON, nests too deep or holds a
    lone surrogate."""
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Refused("INVALID_JSON", "the request body is not UTF-8", 400) from None
    except RecursionError:
        raise _Refused("INVALID_JSON", f"the JSON body nests deeper than {MAX_DEPTH} levels", 400) from None
    except ValueError:
        return                  # FastAPI answers INVALID_JSON with the position of the error
    try:
        _check(value)
    except RecursionError:
        raise _Refused("INVALID_JSON", f"the JSON body nests deeper than {MAX_DEPTH} levels", 400) from None


class BodyGuard:
    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        try:
            length = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            length = 0
        try:
            if length > self.max_bytes:
                raise _Refused("BODY_TOO_LARGE", f"the body has {length} bytes; at most {self.max_bytes} "
                               "are accepted (TRIAGE_MAX_BODY_BYTES)", 413)
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":          # the client went away
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Refused("BODY_TOO_LARGE", f"the body has more than {self.max_bytes} bytes "
                                   "(TRIAGE_MAX_BODY_BYTES)", 413)
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if body and (content_type == b"application/json" or content_type.endswith(b"+json")):
                inspect_json(body)
        except _Refused as refused:
            return await _answer(send, refused)

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _answer(send, refused: _Refused) -> None:
    payload = json.dumps(error_body(refused.code, refused.message), ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if refused.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})

"""Every error answer is ``{"code", "message"[, "details"]}`` with the status the catalogue
(:data:`triage.errors.CATALOGUE`) gives its code; nothing is ever a plain-text 500.

Validation errors from pydantic are mapped to codes by their error type; a text field that
fails its own check (``TEXT_EMPTY``, ``TEXT_INVALID``) carries that code in its error type.
An unexpected exception is logged with its traceback and answered ``INTERNAL_ERROR`` with the
request id, so an operator can find it and the caller sees no internals.
"""
from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.observe import REQUEST_ID

from triage.errors import CATALOGUE, TriageError, status_for

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the HTTP layer raises itself; its status comes from the catalogue unless a
    route has a reason to answer otherwise (``status``)."""

    def __init__(self, code: str, message: str, details: list | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"error code {code!r} is not in triage.errors.CATALOGUE")
        super().__init__(message)
        self.code, self.message, self.details = code, message, details
        self.status = status or status_for(code)
        self.headers = headers


def error_body(code: str, message: str, details: list | None = None) -> dict:
    out: dict = {"code": code, "message": message}
    if details:
        out["details"] = details
    return out


def error_response(code: str, message: str, details: list | None = None, status: int | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status or status_for(code),
                        headers=headers)


# pydantic error type -> our code. Custom types raised by our own validators (see
# api/schemas.py) are named after the code in lower case.
_VALIDATION_CODES = {
    "missing": "FIELD_MISSING", "string_type": "FIELD_NOT_STRING", "too_long": "TOO_MANY_ITEMS",
    "too_short": "TOO_FEW_ITEMS", "extra_forbidden": "UNKNOWN_FIELD", "model_attributes_type": "BODY_NOT_OBJECT",
    "model_type": "BODY_NOT_OBJECT", "dict_type": "BODY_NOT_OBJECT", "list_type": "FIELD_NOT_LIST",
    "string_too_long": "FIELD_TOO_LONG", "json_invalid": "INVALID_JSON", "text_empty": "TEXT_EMPTY",
    "text_invalid": "TEXT_INVALID", "text_too_long": "TEXT_TOO_LONG",
}


def _validation_details(exc: RequestValidationError) -> list[dict]:
    return [{"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"), "msg": err.get("msg")}
            for err in exc.errors()]


def validation_code(error_type: str | None) -> str:
    """The code for a pydantic error type: our own, a known mapping, else ``INVALID_VALUE``."""
    if error_type in _VALIDATION_CODES:
        return _VALIDATION_CODES[error_type]
    if error_type and error_type.upper() in CATALOGUE:
        return error_type.upper()
    return "INVALID_VALUE"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return error_response(exc.code, exc.message, exc.details, exc.status, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response("INVALID_JSON", "the request body is not valid JSON", details)
        first = details[0] if details else {}
        where = ".".join(p for p in first.get("loc", []) if p != "body") or "body"
        code = validation_code(first.get("type"))
        return error_response(code, f"{where}: {first.get('msg', 'invalid request')}", details)

    @app.exception_handler(TriageError)
    async def _library(_: Request, exc: TriageError):
        if exc.status >= 500:
            log.error("library error %s: %s", exc.code, exc.message)
        return error_response(exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request.app, request.url.path) or \
                [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
            headers["Allow"] = ", ".join(allowed)
            return error_response("METHOD_NOT_ALLOWED", f"{request.method} is not allowed here; allowed: "
                                  f"{', '.join(allowed)}", status=405, headers=headers)
        if exc.status_code == 400:       # FastAPI could not read the body (e.g. nested too deep)
            return error_response("INVALID_JSON", "the request body could not be decoded as JSON", headers=headers)
        code = {404: "NOT_FOUND"}.get(exc.status_code, "INVALID_REQUEST")
        return error_response(code, str(exc.detail), status=exc.status_code, headers=headers or None)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        log.error("database error on %s %s: %s", request.method, _route(request), type(exc.orig).__name__)
        return error_response("DATABASE_BUSY", "the database cannot be reached or is locked right now; nothing "
                              "was changed, retry shortly", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        rid = REQUEST_ID.get() or uuid.uuid4().hex
        log.error("unexpected error on %s %s: %s", request.method, _route(request), type(exc).__name__,
                  exc_info=exc)
        return error_response("INTERNAL_ERROR", f"an unexpected error occurred; quote request id {rid}")


def _route(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", None) or "unmatched"


def allowed_methods(app, path: str) -> list[str]:
    """Every method the API answers at ``path``, from the OpenAPI paths (one path may be served
    by several routes, e.g. GET and DELETE of a case, so one route's methods are not enough)."""
    import re

    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)

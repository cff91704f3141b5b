"""Every error answer is ``{"code", "message"[, "details"]}`` with a 4xx/5xx status."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from triage.errors import BundleError, EncoderError, InputError, TriageError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _body(code: str, message: str, details: list | None = None) -> dict:
    out = {"code": code, "message": message}
    if details:
        out["details"] = details
    return out


def _validation_details(exc: RequestValidationError) -> list[dict]:
    out = []
    for err in exc.errors():
        out.append({"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"), "msg": err.get("msg")})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return JSONResponse(_body(exc.code, exc.message, exc.details), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        details = _validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return JSONResponse(_body("INVALID_JSON", "the request body is not valid JSON", details), status_code=400)
        first = details[0] if details else {}
        where = ".".join(p for p in first.get("loc", []) if p != "body") or "body"
        code = {"missing": "FIELD_MISSING", "string_type": "FIELD_NOT_STRING", "too_long": "TOO_MANY_ITEMS",
                "too_short": "TOO_FEW_ITEMS", "extra_forbidden": "UNKNOWN_FIELD",
                "model_attributes_type": "BODY_NOT_OBJECT", "dict_type": "BODY_NOT_OBJECT",
                "list_type": "FIELD_NOT_LIST", "literal_error": "INVALID_VALUE",
                "string_pattern_mismatch": "INVALID_VALUE", "date_from_datetime_parsing": "INVALID_VALUE",
                "int_parsing": "INVALID_VALUE", "greater_than_equal": "INVALID_VALUE", "less_than_equal": "INVALID_VALUE"}.get(first.get("type"), "INVALID_REQUEST")
        if code == "INVALID_REQUEST" and first.get("type") == "value_error":
            code = "TEXT_EMPTY"
        return JSONResponse(_body(code, f"{where}: {first.get('msg', 'invalid request')}", details), status_code=422)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError):
        status = 413 if exc.code == "TEXT_TOO_LONG" else 422
        return JSONResponse(_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(BundleError)
    @app.exception_handler(EncoderError)
    async def _model(_: Request, exc: TriageError):
        log.error("model error: %s", exc)
        return JSONResponse(_body(exc.code, exc.message), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code)

"""Request ids, structured logs and request metrics: an ASGI middleware and a JSON log format.

Every request gets an id (the caller's ``X-Request-ID`` when it is short printable ASCII, else a
new one), returned in the ``X-Request-ID`` header. When the request ends, one log line says its
id, method, route (the template, e.g. ``/v1/cases/{case_id}``), status, duration, the caller's
key name and the prediction ids it created: never a body, a query string, a text, SQL parameters
or credentials. Library loggers follow the same rule (``docs/deployment.md``): engines are
created with ``hide_parameters=True`` and database URLs are masked.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone

from api import metrics

log = logging.getLogger("api.access")
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# LogRecord attributes that are not extra fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request id when there is one,
    and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = REQUEST_ID.get()
        if rid and "request_id" not in record.__dict__:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", json_logs: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_logs else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True        # api.access replaces it (no query strings)


def request_id_from(headers: dict[bytes, bytes]) -> str:
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    return given if _GOOD_ID.match(given) else uuid.uuid4().hex


class Observe:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = request_id_from(dict(scope.get("headers") or []))
        token = REQUEST_ID.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = {"code": 500}
        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.REQUEST_SECONDS.labels(route=route, method=scope["method"], status=str(status["code"])).observe(elapsed)
            state = scope.get("state") or {}
            extra = {"request_id": rid, "method": scope["method"], "route": route, "status": status["code"],
                     "duration_ms": round(elapsed * 1000, 2)}
            principal = state.get("principal")
            if principal is not None:
                extra["key_name"] = principal.name
            if state.get("prediction_ids"):
                extra["prediction_ids"] = state["prediction_ids"]
            if state.get("timings"):
                extra["timings_ms"] = state["timings"]
            log.info("%s %s %s", scope["method"], route, status["code"], extra=extra)
            REQUEST_ID.reset(token)

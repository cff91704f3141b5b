"""Who is calling, and may they: API keys sent as ``Authorization: Bearer KEY``.

Roles are ordered (:data:`triage.vocab.ROLES`): ``intake`` triages and searches similar cases;
``supervisor`` also reads predictions and cases and records feedback; ``admin`` also writes the
knowledge base and reloads bundles. Each router declares the role it needs with
:func:`require`; a route reads the caller through ``PrincipalDep`` (feedback records the
reviewer from it).

**No key configured.** While the database holds no active key, the service is *open*: every
caller is the principal ``local`` with the ``admin`` role. ``python -m api`` allows that only on
a loopback address (or with ``--insecure``); the first ``keys create`` closes it (within
``TRIAGE_SYNC_SECONDS``), after which every route but health, readiness, metrics and the API
description needs a key. A key sent while the service is open must still be valid.

**Other ways in.** :func:`get_principal` returns a principal already placed on the request
(``request.state.principal``) before it looks at the header, so another authentication method —
a console's logged-in user, say — plugs in as a dependency or middleware that sets one
(:class:`triage.keys.Principal` with ``kind="session"``); roles and ``require`` apply unchanged.

**Failed attempts** (a malformed header or an unknown, revoked or expired key) are counted per
client address; past ``TRIAGE_AUTH_MAX_FAILURES`` within ``TRIAGE_AUTH_WINDOW_SECONDS`` that
client is answered 429 ``AUTH_RATE_LIMITED`` with ``Retry-After`` until the window has passed,
without the key being looked at. The count is kept per worker process.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from api import metrics
from api.errors import ApiError
from triage.keys import KEY_PREFIX, KeyStore, Principal
from triage.vocab import role_allows

LOCAL = Principal("local", "admin", kind="open")
_bearer = HTTPBearer(auto_error=False, description="An API key made with `python -m api keys create`")


class FailureLimiter:
    """Failed attempts per client within a sliding window."""

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures, self.window = max_failures, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds this client must wait (0: it may try)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.get(client)
            if not times:
                return 0
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._seen) > 100_000:              # bounded memory: forget the quietest clients
                self._seen = {k: v for k, v in self._seen.items() if v}
            self._seen.setdefault(client, deque()).append(time.monotonic())


class Authenticator:
    """Checks keys against the database; the number of active keys and each verified key are
    cached for ``ttl`` seconds, so a new or revoked key takes effect within that time."""

    def __init__(self, keys: KeyStore, ttl: float, limiter: FailureLimiter) -> None:
        self.keys, self.ttl, self.limiter = keys, ttl, limiter
        self._open: tuple[float, bool] | None = None
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        now = time.monotonic()
        cached = self._open
        if cached is None or now - cached[0] > self.ttl:
            cached = (now, self.keys.active_count() == 0)
            self._open = cached
        return cached[1]

    def verify(self, key: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] <= self.ttl:
            return hit[1]
        principal = self.keys.verify(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal

    def authenticate(self, request: Request) -> Principal:
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait:
            metrics.AUTH_FAILURES.labels(reason="rate_limited").inc()
            raise ApiError("AUTH_RATE_LIMITED", f"too many failed authentication attempts; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        header = request.headers.get("authorization")
        if header is None:
            if self.is_open():
                return LOCAL
            metrics.AUTH_FAILURES.labels(reason="missing").inc()
            raise ApiError("AUTH_REQUIRED", "this route needs the header 'Authorization: Bearer <API key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if not header.isascii() or scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) > 200:
            self._failed(client, "malformed")
            raise ApiError("AUTH_INVALID", "the Authorization header must be 'Bearer <API key>' (an API key "
                           f"starts with {KEY_PREFIX!r})", headers={"WWW-Authenticate": "Bearer"})
        principal = self.verify(key)
        if principal is None:
            self._failed(client, "unknown_key")
            raise ApiError("AUTH_INVALID", "the API key is unknown, revoked or expired",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return principal

    def _failed(self, client: str, reason: str) -> None:
        metrics.AUTH_FAILURES.labels(reason=reason).inc()
        self.limiter.failed(client)


def get_principal(request: Request, _: Annotated[object, Security(_bearer)] = None) -> Principal:
    """The caller (cached on the request, so several dependencies authenticate once)."""
    state = request.scope.setdefault("state", {})
    if state.get("principal") is None:
        auth: Authenticator | None = getattr(request.app.state, "auth", None)
        if auth is None:
            raise ApiError("MODEL_NOT_READY", "the service is still starting; retry shortly")
        state["principal"] = auth.authenticate(request)
    return state["principal"]


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: str):
    """A dependency that lets callers of ``role`` or a higher one through (403 otherwise)."""
    def dependency(principal: PrincipalDep) -> Principal:
        if not role_allows(principal.role, role):
            raise ApiError("AUTH_FORBIDDEN", f"this route needs the {role!r} role; the key {principal.name!r} "
                           f"has {principal.role!r}")
        return principal
    dependency.__name__ = f"require_{role}"
    return Depends(dependency)

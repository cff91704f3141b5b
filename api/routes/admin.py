"""``/v1/admin``: reload the served bundle, and manage API keys (the ``admin`` role).

A reload loads and verifies the new bundle beside the one being served, records the decision in
the database, and swaps it in with one assignment; requests already running finish on the
model they started with, and every other worker follows the decision within
``TRIAGE_SYNC_SECONDS``. A bundle that fails to load leaves the served one in place (409).

Keys made here are the same as ``python -m api keys create``: the key is in the answer once.
"""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, require
from api.errors import ApiError
from api.reload import reload_model
from api.schemas import ERRORS, ReloadRequest
from triage.keys import KeyStore
from triage.vocab import Role

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[require("admin")])


@router.post("/reload", responses=ERRORS,
             summary="Load models/CURRENT (or the named bundle), record the decision and swap it in")
def reload(request: Request, principal: PrincipalDep, req: ReloadRequest | None = None) -> dict:
    return reload_model(request.app, req.bundle if req else None, decided_by=principal.name)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role
    expires_at: datetime | None = Field(None, description="ISO time with a zone; none: the key does not expire")


class KeyInfo(BaseModel):
    name: str
    role: str
    prefix: str
    state: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None


class KeyCreated(KeyInfo):
    key: str = Field(..., description="the API key; shown this once, only its sha256 is stored")


def _keys(request: Request) -> KeyStore:
    return KeyStore(request.app.state.settings.database_url)


@router.get("/keys", response_model=list[KeyInfo], responses=ERRORS, summary="The API keys (never the keys themselves)")
def list_keys(request: Request) -> list[dict]:
    return _keys(request).list()


@router.post("/keys", status_code=201, response_model=KeyCreated, responses=ERRORS, summary="Make an API key")
def create_key(req: KeyCreate, request: Request) -> dict:
    store = _keys(request)
    if req.expires_at is not None and req.expires_at.tzinfo is None:
        raise ApiError("KEY_EXPIRY", "expires_at needs a time zone (e.g. 2027-01-01T00:00:00+08:00)")
    key = store.create(req.name, req.role, req.expires_at)
    info = next(k for k in store.list() if k["name"] == req.name)
    return {**info, "key": key}


@router.delete("/keys/{name}", status_code=204, responses=ERRORS, summary="Revoke an API key")
def revoke_key(name: str, request: Request) -> Response:
    if not _keys(request).revoke(name):
        raise ApiError("KEY_NOT_FOUND", f"no active key named {name!r}")
    return Response(status_code=204)

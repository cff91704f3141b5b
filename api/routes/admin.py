"""``POST /v1/admin/reload``: serve another bundle without a restart.

The new bundle is loaded and verified completely beside the one being served, then swapped in
with one assignment; requests already running finish on the model they started with. A bundle
that fails to load leaves the served one in place (409 with the reason).
"""
from __future__ import annotations

import secrets

from fastapi import APIRouter, Request

from api.errors import ApiError
from api.reload import reload_model
from api.schemas import ERRORS, ReloadRequest

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", responses=ERRORS,
             summary="Load models/CURRENT (or the named bundle) and swap it in")
def reload(request: Request, req: ReloadRequest | None = None) -> dict:
    settings = request.app.state.settings
    if settings.admin_token:
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given, f"Bearer {settings.admin_token}"):
            raise ApiError("ADMIN_TOKEN", "this route needs the header 'Authorization: Bearer <TRIAGE_ADMIN_TOKEN>'")
    return reload_model(request.app, req.bundle if req else None)

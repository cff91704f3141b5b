"""Knowledge-base management and similar-case search: ``/v1/cases`` and ``/v1/similar``.

Writes go to the database (one transaction, with a change-log row per case), then this worker
applies the change log to its index before answering, so a case the service acknowledged is
durable and searchable at once; every other worker applies the same log within
``TRIAGE_SYNC_SECONDS``. Writing needs the ``admin`` role, reading a case ``supervisor``,
searching ``intake``. Case ids are NFKC-normalised (``ｋｂ-a-0001`` is ``kb-a-0001``).
"""
from __future__ import annotations

import json
import unicodedata

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from api.deps import (FollowerDep, IdempotencyDep, ModelDep, PrincipalDep, SettingsDep, StoreDep, require)
from api.errors import ApiError
from api.idempotency import answer, run_write
from api.schemas import ERRORS, CasesRequest, CasesResponse, SimilarRequest, SimilarResponse
from triage.suggest import suggest_response
from triage.text import validate_text

router = APIRouter(prefix="/v1", tags=["knowledge base"])
UNTRUSTED_FIELDS = ("finding", "resolution", "response")


def case_id_from_path(case_id: str) -> str:
    return unicodedata.normalize("NFKC", case_id)


@router.post("/cases", response_model=CasesResponse, responses=ERRORS, dependencies=[require("admin")],
             summary="Add or update up to {max_cases_per_call} cases (admin)")
def upsert_cases(req: CasesRequest, request: Request, store: StoreDep, model: ModelDep, follower: FollowerDep,
                 settings: SettingsDep, principal: PrincipalDep, idem: IdempotencyDep):
    if len(req.cases) > settings.max_cases_per_call:
        raise ApiError("TOO_MANY_ITEMS", f"cases: at most {settings.max_cases_per_call} per call, got {len(req.cases)}")
    ids = [c.case_id for c in req.cases]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ApiError("DUPLICATE_CASE_ID", f"cases: each case_id may appear once per call, repeated: {dup[:5]}")
    total_chars = 0
    for i, c in enumerate(req.cases):
        validate_text(c.text, settings.max_text_chars, f"cases[{i}].text")
        total_chars += len(c.text)
        for name in UNTRUSTED_FIELDS:
            value = getattr(c, name)
            if value is not None and len(value) > settings.max_case_field_chars:
                raise ApiError("FIELD_TOO_LONG", f"cases[{i}].{name} may be at most {settings.max_case_field_chars} "
                               f"characters, got {len(value)}")
        if c.metadata is not None and len(json.dumps(c.metadata, ensure_ascii=False)) > settings.max_case_field_chars:
            raise ApiError("FIELD_TOO_LONG", f"cases[{i}].metadata may be at most {settings.max_case_field_chars} "
                           "characters as JSON")
    if total_chars > settings.max_batch_chars:
        raise ApiError("TOO_MANY_CHARS", f"cases: the texts hold {total_chars} characters in all; at most "
                       f"{settings.max_batch_chars} per call (TRIAGE_MAX_BATCH_CHARS)")
    cases = [c.model_dump(mode="json", exclude_none=True) for c in req.cases]
    emb = model.encoder.encode([c["text"] for c in cases], "passage")      # one encode for the batch

    def work(conn):
        created, updated = store.upsert(cases, emb, conn=conn)
        return 200, {"created": created, "updated": updated, "case_ids": ids}
    try:
        status, body, replayed = run_write(request, principal, idem, cases, work, ordered=True)
    except SQLAlchemyError as exc:
        raise ApiError("CASE_STORE_UNAVAILABLE", "the cases could not be stored; nothing was changed, retry "
                       "shortly") from exc
    _catch_up(follower)
    return answer(status, {**body, "total": len(follower.index)}, replayed)


@router.get("/cases/{case_id}", responses=ERRORS, dependencies=[require("supervisor")],
            summary="One case as stored (supervisor)")
def get_case(case_id: str, store: StoreDep) -> dict:
    case_id = case_id_from_path(case_id)
    case = store.get(case_id)
    if case is None:
        raise ApiError("CASE_NOT_FOUND", f"no case with case_id {case_id!r}")
    return case


@router.delete("/cases/{case_id}", status_code=204, responses=ERRORS, dependencies=[require("admin")],
               summary="Delete a case (admin)")
def delete_case(case_id: str, request: Request, store: StoreDep, follower: FollowerDep, principal: PrincipalDep,
                idem: IdempotencyDep):
    case_id = case_id_from_path(case_id)

    def work(conn):
        if not store.delete(case_id, conn=conn):
            raise ApiError("CASE_NOT_FOUND", f"no case with case_id {case_id!r}")
        return 204, None
    try:
        status, body, replayed = run_write(request, principal, idem, {"case_id": case_id}, work, ordered=True)
    except SQLAlchemyError as exc:
        raise ApiError("CASE_STORE_UNAVAILABLE", "the case could not be deleted; nothing was changed, retry "
                       "shortly") from exc
    _catch_up(follower)
    return answer(status, body, replayed)


def _catch_up(follower) -> None:
    """Apply the change log to this worker's index; a failure here leaves the write committed
    (the background sync applies it shortly), so it is not the caller's error."""
    try:
        follower.catch_up()
    except SQLAlchemyError:
        pass


@router.post("/similar", response_model=SimilarResponse, responses=ERRORS, dependencies=[require("intake")],
             summary="Similar past cases for a text, with filters, and a reply draft")
def similar(req: SimilarRequest, model: ModelDep, settings: SettingsDep) -> dict:
    validate_text(req.text, settings.max_text_chars)
    vector = model.encoder.encode([req.text], "query")[0]
    hits = model.cases.search(req.text, vector, req.k, req.filters, req.mode)
    return {"hits": hits, "suggested_response": suggest_response(hits)}

"""Knowledge-base management and similar-case search: ``/v1/cases`` and ``/v1/similar``.

Writes go to the database first (one transaction), then to the in-memory index, so a case
the service acknowledged is both durable and searchable at once, with no restart.
"""
from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ModelDep, SettingsDep, StoreDep
from api.errors import ApiError
from api.schemas import ERRORS, CasesRequest, CasesResponse, SimilarRequest, SimilarResponse
from triage.suggest import suggest_response
from triage.text import validate_text

router = APIRouter(prefix="/v1", tags=["knowledge base"])
@router.post("/cases", response_model=CasesResponse, responses=ERRORS, summary="Add or update up to {max_cases_per_call} cases")
def upsert_cases(req: CasesRequest, store: StoreDep, model: ModelDep, settings: SettingsDep) -> dict:
    if len(req.cases) > settings.max_cases_per_call:
        raise ApiError("TOO_MANY_ITEMS", f"cases: at most {settings.max_cases_per_call} per call, got {len(req.cases)}")
    ids = [c.case_id for c in req.cases]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ApiError("DUPLICATE_CASE_ID", f"cases: each case_id may appear once per call, repeated: {dup[:5]}")
    for i, c in enumerate(req.cases):
        validate_text(c.text, settings.max_text_chars, f"cases[{i}].text")
    cases = [c.model_dump(mode="json", exclude_none=True) for c in req.cases]
    emb = model.encoder.encode([c["text"] for c in cases], "passage")      # one encode for the batch
    store.upsert(cases, emb)
    created, updated = model.cases.upsert(cases, emb)
    return {"created": created, "updated": updated, "case_ids": ids, "total": len(model.cases)}


@router.get("/cases/{case_id}", responses=ERRORS, summary="One case as stored")
def get_case(case_id: str, store: StoreDep) -> dict:
    case = store.get(case_id)
    if case is None:
        raise ApiError("CASE_NOT_FOUND", f"no case with case_id {case_id!r}")
    return case


@router.delete("/cases/{case_id}", status_code=204, responses=ERRORS, summary="Delete a case")
def delete_case(case_id: str, store: StoreDep, model: ModelDep) -> Response:
    if not store.delete(case_id):
        raise ApiError("CASE_NOT_FOUND", f"no case with case_id {case_id!r}")
    model.cases.remove(case_id)
    return Response(status_code=204)


@router.post("/similar", response_model=SimilarResponse, responses=ERRORS,
             summary="Similar past cases for a text, with filters, and a reply draft")
def similar(req: SimilarRequest, model: ModelDep, settings: SettingsDep) -> dict:
    validate_text(req.text, settings.max_text_chars)
    vector = model.encoder.encode([req.text], "query")[0]
    hits = model.cases.search(req.text, vector, req.k, req.filters, req.mode)
    return {"hits": hits, "suggested_response": suggest_response(hits)}

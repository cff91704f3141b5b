"""``POST /v1/triage`` and ``POST /v1/triage/batch`` (the ``intake`` role). Plain ``def``:
CPU-bound, thread pool.

Every answer is recorded (one transaction per call, committed before the answer is sent) and
carries its ``prediction_id`` for ``POST /v1/feedback``; the ids go to the request's log line.
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from api import metrics
from api.deps import ModelDep, PredictionsDep, SettingsDep, require
from api.errors import ApiError
from api.schemas import ERRORS, BatchRequest, BatchResponse, TriageRequest, TriageResponse
from triage.store import PredictionLog
from triage.text import validate_text

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["triage"], dependencies=[require("intake")])


@router.post("/triage", response_model=TriageResponse, responses=ERRORS,
             summary="Grade one complaint: type, severity, emotion, intensity, similar cases")
def triage_one(req: TriageRequest, request: Request, model: ModelDep, log: PredictionsDep,
               settings: SettingsDep) -> dict:
    validate_text(req.text, settings.max_text_chars)
    return _recorded(request, log, [req], model.triage([req.text], [req.id], [req.context()]))[0]


def _recorded(request: Request, log: PredictionLog, items: list[TriageRequest], answers: list[dict]) -> list[dict]:
    try:
        ids = log.record(answers, [it.text for it in items], [it.channel for it in items])
    except SQLAlchemyError as exc:      # an answer that cannot be recorded is not given out
        logger.error("recording predictions failed: %s", type(exc).__name__)
        raise ApiError("PREDICTION_STORE_UNAVAILABLE", "the prediction record cannot be written right now; "
                       "retry shortly") from exc
    request.state.prediction_ids = ids
    metrics.record_predictions(answers)
    return [{**a, "prediction_id": pid} for a, pid in zip(answers, ids)]


@router.post("/triage/batch", response_model=BatchResponse, responses=ERRORS,
             summary="Grade up to {max_batch} complaints ({max_batch_chars} characters in all) in one call "
                     "(one encode for the whole batch)")
def triage_batch(req: BatchRequest, request: Request, model: ModelDep, log: PredictionsDep,
                 settings: SettingsDep) -> dict:
    if len(req.items) > settings.max_batch:
        raise ApiError("TOO_MANY_ITEMS", f"items: at most {settings.max_batch} per call, got {len(req.items)}")
    total = 0
    for i, item in enumerate(req.items):
        validate_text(item.text, settings.max_text_chars, f"items[{i}].text")
        total += len(item.text)
    if total > settings.max_batch_chars:
        raise ApiError("TOO_MANY_CHARS", f"items: the texts hold {total} characters in all; at most "
                       f"{settings.max_batch_chars} per call (TRIAGE_MAX_BATCH_CHARS)")
    answers = model.triage([it.text for it in req.items], [it.id for it in req.items],
                           [it.context() for it in req.items])
    return {"results": _recorded(request, log, req.items, answers)}

"""``POST /v1/triage`` and ``POST /v1/triage/batch`` (the ``intake`` role), through the
micro-batcher.

A route validates its input, then hands the items to ``app.state.batcher`` (:mod:`api.batcher`),
which computes them together with other concurrent requests in one encode and one pass of the
heads, records every answer (one transaction per batch, committed before any answer is sent)
and gives each caller its own. Each answer carries its ``prediction_id`` for
``POST /v1/feedback``; the ids go to the request's log line. A request whose client disconnects
while it waits is withdrawn.
"""
from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError

from api import metrics
from api.deps import SettingsDep, require
from api.errors import ApiError
from api.schemas import ERRORS, BatchRequest, BatchResponse, TriageRequest, TriageResponse
from triage.store import PredictionLog
from triage.text import validate_text

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["triage"], dependencies=[require("intake")])


@router.post("/triage", response_model=TriageResponse, responses=ERRORS,
             summary="Grade one complaint: type, severity, emotion, intensity, similar cases")
async def triage_one(req: TriageRequest, request: Request, settings: SettingsDep) -> dict:
    validate_text(req.text, settings.max_text_chars)
    return (await _through_batcher(request, [req]))[0]


@router.post("/triage/batch", response_model=BatchResponse, responses=ERRORS,
             summary="Grade up to {max_batch} complaints ({max_batch_chars} characters in all) in one call "
                     "(one encode for the whole batch)")
async def triage_batch(req: BatchRequest, request: Request, settings: SettingsDep) -> dict:
    if len(req.items) > settings.max_batch:
        raise ApiError("TOO_MANY_ITEMS", f"items: at most {settings.max_batch} per call, got {len(req.items)}")
    total = 0
    for i, item in enumerate(req.items):
        validate_text(item.text, settings.max_text_chars, f"items[{i}].text")
        total += len(item.text)
    if total > settings.max_batch_chars:
        raise ApiError("TOO_MANY_CHARS", f"items: the texts hold {total} characters in all; at most "
                       f"{settings.max_batch_chars} per call (TRIAGE_MAX_BATCH_CHARS)")
    return {"results": await _through_batcher(request, req.items)}


def batch_processor(app: FastAPI):
    """The batcher's function: triage the gathered items with the model being served now and
    record the answers; runs in the batcher's worker thread."""
    def process(items: list[TriageRequest]) -> list[dict]:
        model, log = app.state.model, app.state.predictions
        if model is None or log is None:
            raise ApiError("MODEL_NOT_READY", "the model is not loaded yet; retry shortly")
        answers = model.triage([it.text for it in items], [it.id for it in items], [it.context() for it in items])
        return _recorded(log, items, answers)
    return process


def _recorded(log: PredictionLog, items: list[TriageRequest], answers: list[dict]) -> list[dict]:
    try:
        ids = log.record(answers, [it.text for it in items], [it.channel for it in items])
    except SQLAlchemyError as exc:      # an answer that cannot be recorded is not given out
        logger.error("recording predictions failed: %s", type(exc).__name__)
        raise ApiError("PREDICTION_STORE_UNAVAILABLE", "the prediction record cannot be written right now; "
                       "retry shortly") from exc
    metrics.record_predictions(answers)
    return [{**a, "prediction_id": pid} for a, pid in zip(answers, ids)]


async def _through_batcher(request: Request, items: list[TriageRequest]) -> list[dict]:
    """The batcher's answers for ``items``; withdrawn if the client disconnects first."""
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise ApiError("MODEL_NOT_READY", "the model is not loaded yet; retry shortly")
    work = asyncio.ensure_future(batcher.submit(items))
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():
        work.cancel()
        raise ApiError("CLIENT_CLOSED_REQUEST", "the client closed the connection before its answer")
    answers = work.result()
    request.state.prediction_ids = [a["prediction_id"] for a in answers]
    return answers


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone (the body is already read, so the next ASGI message
    is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass

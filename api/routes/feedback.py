"""Supervisors' corrections: ``POST /v1/feedback`` and ``GET /v1/predictions/{id}`` (the
``supervisor`` role).

A correction is written in one committed transaction before the answer is sent, next to the
unchanged prediction it corrects; the reviewer is the caller's key name, never a field of the
body. ``python -m training train --feedback`` turns corrections into training records.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from api import metrics
from api.deps import IdempotencyDep, PredictionsDep, PrincipalDep, require
from api.errors import ApiError
from api.idempotency import answer, run_write
from api.schemas import ERRORS, FeedbackRequest, FeedbackResponse

router = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[require("supervisor")])


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=ERRORS,
             summary="Record a supervisor's correction of a prediction")
def add_feedback(req: FeedbackRequest, request: Request, log: PredictionsDep, principal: PrincipalDep,
                 idem: IdempotencyDep):
    corrections = req.corrections.model_dump(exclude_none=True)
    found = log.get(req.prediction_id)
    if found is None:
        raise ApiError("PREDICTION_NOT_FOUND", f"no prediction with id {req.prediction_id!r}")

    def work(conn):
        fb = log.add_feedback(req.prediction_id, corrections, principal.name, req.reason, conn=conn)
        return 201, {**fb, "prediction": found["prediction"]}
    try:
        status, body, replayed = run_write(request, principal, idem, req.model_dump(mode="json"), work)
    except SQLAlchemyError as exc:      # not stored: say so, so the caller retries
        raise ApiError("FEEDBACK_STORE_UNAVAILABLE", "the correction could not be stored; nothing was "
                       "recorded, retry shortly") from exc
    if not replayed:
        metrics.record_feedback(corrections)
    return answer(status, body, replayed)


@router.get("/predictions/{prediction_id}", responses=ERRORS,
            summary="A recorded prediction with every correction made to it")
def get_prediction(prediction_id: str, log: PredictionsDep) -> dict:
    found = log.get(prediction_id)
    if found is None:
        raise ApiError("PREDICTION_NOT_FOUND", f"no prediction with id {prediction_id!r}")
    return found

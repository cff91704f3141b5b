"""Supervisors' corrections: ``POST /v1/feedback`` and ``GET /v1/predictions/{id}``.

A correction is written in one committed transaction before the answer is sent, next to the
unchanged prediction it corrects; ``python -m training train --feedback`` turns corrections
into training records.
"""
from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from api.deps import PredictionsDep
from api.errors import ApiError
from api.schemas import ERRORS, FeedbackRequest, FeedbackResponse

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=ERRORS,
             summary="Record a supervisor's correction of a prediction")
def add_feedback(req: FeedbackRequest, log: PredictionsDep) -> dict:
    try:
        fb = log.add_feedback(req.prediction_id, req.corrections.model_dump(exclude_none=True), req.reviewer, req.reason)
    except SQLAlchemyError as exc:      # not stored: say so, so the caller retries
        raise ApiError("FEEDBACK_STORE_UNAVAILABLE", "the correction could not be stored; nothing was "
                       "recorded, retry shortly") from exc
    return {**fb, "prediction": log.get(req.prediction_id)["prediction"]}


@router.get("/predictions/{prediction_id}", responses=ERRORS,
            summary="A recorded prediction with every correction made to it")
def get_prediction(prediction_id: str, log: PredictionsDep) -> dict:
    found = log.get(prediction_id)
    if found is None:
        raise ApiError("PREDICTION_NOT_FOUND", f"no prediction with id {prediction_id!r}")
    return found

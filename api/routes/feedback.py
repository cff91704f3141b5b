"""Supervisors' corrections: ``POST /v1/feedback`` and ``GET /v1/predictions/{id}``.

A correction is written in one committed transaction before the answer is sent, next to the
unchanged prediction it corrects; ``python -m training train --feedback`` turns corrections
into training records.
"""
from __future__ import annotations

from fastapi import APIRouter, Request

from api.errors import ApiError
from api.schemas import ErrorResponse, FeedbackRequest, FeedbackResponse
from triage.errors import DataError

router = APIRouter(prefix="/v1", tags=["feedback"])
ERRORS = {404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


def prediction_log(request: Request):
    log = getattr(request.app.state, "predictions", None)
    if log is None:
        raise ApiError(503, "MODEL_NOT_READY", "the prediction record is not open yet; retry shortly")
    return log


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=ERRORS,
             summary="Record a supervisor's correction of a prediction")
def add_feedback(req: FeedbackRequest, request: Request) -> dict:
    log = prediction_log(request)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        fb = log.add_feedback(req.prediction_id, req.corrections.model_dump(exclude_none=True), req.reviewer, req.reason)
    except DataError as exc:
        status = 404 if exc.code == "PREDICTION_NOT_FOUND" else 422
        raise ApiError(status, exc.code, exc.message) from exc
    except SQLAlchemyError as exc:      # not stored: say so, so the caller retries
        raise ApiError(503, "FEEDBACK_STORE_UNAVAILABLE", "the correction could not be stored; nothing was "
                       "recorded, retry shortly") from exc
    return {**fb, "prediction": log.get(req.prediction_id)["prediction"]}


@router.get("/predictions/{prediction_id}", responses=ERRORS,
            summary="A recorded prediction with every correction made to it")
def get_prediction(prediction_id: str, request: Request) -> dict:
    found = prediction_log(request).get(prediction_id)
    if found is None:
        raise ApiError(404, "PREDICTION_NOT_FOUND", f"no prediction with id {prediction_id!r}")
    return found

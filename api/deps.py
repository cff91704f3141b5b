"""Dependencies shared by the routers: the settings, each piece of loaded state or a 503
(``MODEL_NOT_READY``) while the service is still starting, and the caller (``PrincipalDep``,
from :mod:`api.auth`; ``require(role)`` guards a router or a route)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.auth import PrincipalDep, require
from api.errors import ApiError
from api.settings import Settings
from triage.pipeline import TriageModel
from triage.store import CaseFollower, CaseStore, IdempotencyStore, PredictionLog


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def _state(name: str, what: str):
    def dependency(request: Request) -> Any:
        value = getattr(request.app.state, name, None)
        if value is None:
            raise ApiError("MODEL_NOT_READY", f"the {what} is not loaded yet; retry shortly")
        return value
    dependency.__name__ = f"get_{name}"
    return dependency


get_model = _state("model", "model")
get_store = _state("store", "knowledge base")
get_follower = _state("follower", "knowledge-base index")
get_predictions = _state("predictions", "prediction record")
get_idempotency = _state("idempotency", "idempotency record")

SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[TriageModel, Depends(get_model)]
StoreDep = Annotated[CaseStore, Depends(get_store)]
FollowerDep = Annotated[CaseFollower, Depends(get_follower)]
PredictionsDep = Annotated[PredictionLog, Depends(get_predictions)]
IdempotencyDep = Annotated[IdempotencyStore, Depends(get_idempotency)]

__all__ = ["SettingsDep", "ModelDep", "StoreDep", "FollowerDep", "PredictionsDep", "IdempotencyDep", "PrincipalDep",
           "require"]

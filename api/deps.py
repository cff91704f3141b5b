"""Dependencies shared by the routers."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.settings import Settings
from triage.pipeline import TriageModel


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_model(request: Request) -> TriageModel:
    model = getattr(request.app.state, "model", None)
    if model is None:
        raise ApiError(503, "MODEL_NOT_READY", "the model is not loaded yet; retry shortly")
    return model


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[TriageModel, Depends(get_model)]

"""Health, readiness and model description."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ModelDep

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="A model is loaded and requests can be served")
def readyz(request: Request):
    model = getattr(request.app.state, "model", None)
    if model is None:
        return JSONResponse({"code": "MODEL_NOT_READY", "message": "no model loaded yet"}, status_code=503)
    return {"status": "ready", "model_version": model.version}


@router.get("/v1/model", summary="The bundle being served: version, labels, metrics, libraries")
def model_info(model: ModelDep) -> dict:
    m = model.meta.get("manifest", {})
    return {
        "model_version": model.version,
        "created_at": m.get("created_at"),
        "encoder": m.get("encoder"),
        "labels": {name: [str(c) for c in head.classes_] for name, head in model.heads.items()},
        "metrics": m.get("metrics"),
        "training_data": {k: v for k, v in m.get("training_data", {}).items() if k != "files"},
        "libraries": m.get("libraries"),
        "config": m.get("config"),
        "cases": len(model.cases),
    }

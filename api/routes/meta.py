"""Health, readiness, metrics and the model description. Health, readiness and metrics need no
key (load balancers and Prometheus call them; they carry no personal data); the model
description needs the ``intake`` role."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api import metrics
from api.deps import ModelDep, require
from api.reload import served_bundle
from api.schemas import ERRORS, ErrorResponse

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorResponse}}, summary="A model is loaded; which bundle and which case sequence this worker serves")
def readyz(request: Request):
    state = request.app.state
    model = getattr(state, "model", None)
    if model is None:
        return JSONResponse({"code": "MODEL_NOT_READY", "message": "no model loaded yet"}, status_code=503)
    follower = getattr(state, "follower", None)
    decision = getattr(state, "decision", None)
    out = {"status": "ready", "model_version": model.version, "bundle": served_bundle(model),
           "bundle_decision": decision["seq"] if decision else None,
           "case_sequence": follower.seq if follower else None, "cases": len(model.cases),
           "auth": "open" if state.auth.is_open() else "keys"}
    error = getattr(state, "decision_error", None)
    if error and (decision is None or error["seq"] > decision["seq"]):
        out["decision_error"] = error
    return out


@router.get("/metrics", summary="Prometheus metrics (text exposition format)",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/v1/model", dependencies=[require("intake")], responses=ERRORS,
            summary="The bundle being served: version, labels, metrics, libraries")
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

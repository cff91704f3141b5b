"""The FastAPI app factory. The model is loaded in ``lifespan``, never at import."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI

from api import errors
from api.routes import admin, cases, feedback, meta, triage
from api.settings import Settings
from triage.bundle import current_bundle, load_bundle
from triage.encoder import get_encoder
from triage.errors import BundleError
from triage.pipeline import TriageModel

log = logging.getLogger(__name__)


def load_model(settings: Settings) -> TriageModel:
    """Load the bundle to serve: ``settings.bundle`` or ``models/CURRENT``. The service never
    trains: without a bundle it refuses to start and says which command makes one."""
    bundle = settings.bundle or current_bundle(settings.models_dir)
    if bundle is None:
        raise BundleError("BUNDLE_NOT_FOUND", f"no bundle to serve: {settings.models_dir}/CURRENT is missing; "
                          "train the default bundle with `python -m training train` (scripts/setup runs it)")
    return load_bundle(bundle, get_encoder(settings.encoder), max_chars=settings.max_text_chars)


def open_knowledge_base(settings: Settings, model: TriageModel):
    """Open the case database. An empty database is seeded with the bundle's cases; otherwise
    the database is the source of truth and the index is rebuilt from it."""
    from triage.store import CaseStore

    store = CaseStore(settings.database_url, model.encoder.dim)
    if store.count() == 0:
        cases, emb = model.cases.snapshot()
        if cases:
            store.upsert(cases, emb)
            log.info("seeded the knowledge base with the bundle's %d cases", len(cases))
    else:
        from triage.retrieval import HybridIndex

        index = HybridIndex(model.cases.segmenter, model.cases.dim, model.cases.params)
        index.upsert(*store.load_all())
        model.cases = index
    return store


def create_app(settings: Settings | None = None,
               loader: Callable[[Settings], TriageModel] | None = None) -> FastAPI:
    settings = settings or Settings()
    loader = loader or load_model

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from api.reload import CurrentWatcher
        from triage.store import PredictionLog

        model = loader(settings)
        app.state.store = open_knowledge_base(settings, model)
        app.state.predictions = PredictionLog(settings.database_url, settings.text_retention_days)
        purged = app.state.predictions.purge_texts()
        if purged:
            log.info("retention: blanked the texts of %d predictions older than %d days", purged,
                     settings.text_retention_days)
        app.state.model = model
        watcher = CurrentWatcher(app, settings.watch_current_seconds).start() if settings.watch_current_seconds else None
        log.info("serving bundle %s with %d knowledge-base cases", model.version, len(model.cases))
        yield
        if watcher:
            watcher.stop()
        app.state.model = None
        app.state.store = None
        app.state.predictions = None

    app = FastAPI(title="Complaint triage service", version="0.1.0", lifespan=lifespan,
                  description="Grades Chinese customer complaints: type, severity (一般/重点/危机), "
                              "emotion and intensity, with evidence and similar past cases.")
    app.state.settings = settings
    app.state.model = None
    errors.install(app)
    app.include_router(meta.router)
    app.include_router(triage.router)
    app.include_router(cases.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    app.openapi = lambda: _openapi(app, settings)      # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: Settings) -> dict:
    """The OpenAPI document, with the limits route summaries quote (``{max_batch}``…) filled in
    from the settings this app runs with."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        limits = settings.limits()
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                for key in ("summary", "description"):
                    if isinstance(op.get(key), str):
                        for name, value in limits.items():
                            op[key] = op[key].replace("{" + name + "}", str(value))
        app.openapi_schema = schema
    return app.openapi_schema

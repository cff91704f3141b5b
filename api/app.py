"""The FastAPI app factory. The model is loaded in ``lifespan``, never at import.

At start-up the database is migrated to head (:func:`triage.db.open_engine`), an empty knowledge
base is seeded with the bundle's cases (once, under the write lock, however many workers start
together), the index is built from the database and then follows its change log, and the
served bundle is the newest reload decision in the database when there is one (else
``TRIAGE_BUNDLE`` or ``models/CURRENT``). A background thread (:mod:`api.sync`) keeps the worker
in agreement with the database from then on.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from api import errors, metrics
from api.guard import BodyGuard
from api.observe import Observe
from api.batcher import MicroBatcher
from api.routes import admin, cases, feedback, meta, triage
from api.settings import Settings
from triage.bundle import current_bundle, load_bundle
from triage.encoder import get_encoder
from triage.errors import BundleError, TriageError
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


def _load_followed(settings: Settings, loader, decision: dict | None, app: FastAPI) -> TriageModel:
    """The bundle of the newest reload decision (unless a bundle was named explicitly), else the
    default one; a decision this replica cannot load is reported on ``/readyz``."""
    if decision is not None and settings.bundle is None:
        try:
            return loader(settings.model_copy(update={"bundle": settings.models_dir / decision["bundle"]}))
        except TriageError as exc:
            from api.reload import scrub_paths

            app.state.decision_error = {"seq": decision["seq"], "bundle": decision["bundle"],
                                        "message": scrub_paths(exc.message, settings.models_dir)}
            log.error("cannot serve the decided bundle %s; serving the default one", decision["bundle"])
    return loader(settings)


def open_knowledge_base(settings: Settings, model: TriageModel):
    """Open the case database, seed it with the bundle's cases when it is empty, and give the
    model a fresh index built from the database, with the follower that keeps it current."""
    from triage.retrieval import HybridIndex
    from triage.store import CaseFollower, CaseStore

    store = CaseStore(settings.database_url, model.encoder.dim)
    bundle_cases, emb = model.cases.snapshot()
    if bundle_cases and store.count() == 0:
        created, _ = store.upsert(bundle_cases, emb, only_if_empty=True)
        if created:
            log.info("seeded the knowledge base with the bundle's %d cases", created)
    model.cases = HybridIndex(model.cases.segmenter, model.cases.dim, model.cases.params)
    follower = CaseFollower(store, model.cases)
    follower.load()
    return store, follower


def create_app(settings: Settings | None = None,
               loader: Callable[[Settings], TriageModel] | None = None) -> FastAPI:
    settings = settings or Settings()
    loader = loader or load_model

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from api.auth import Authenticator, FailureLimiter
        from api.reload import CurrentWatcher, served_bundle
        from api.sync import Sync
        from triage.keys import KeyStore
        from triage.store import IdempotencyStore, PredictionLog, ServingLog

        # BLAS work here is small (fusion, heads) and runs beside the encoder's own threads:
        # one BLAS thread avoids threads waiting on each other for cores that are busy
        threadpool_limits(limits=1, user_api="blas")
        url = settings.database_url
        serving = ServingLog(url)                        # opening the engine migrates the database
        decision = serving.latest()
        model = _load_followed(settings, loader, decision, app)
        app.state.store, app.state.follower = open_knowledge_base(settings, model)
        app.state.serving = serving
        if decision is not None and decision["bundle"] == served_bundle(model):
            app.state.decision = decision
            metrics.BUNDLE_DECISION.set(decision["seq"])
        app.state.predictions = PredictionLog(url, settings.text_retention_days)
        app.state.idempotency = IdempotencyStore(url, settings.idempotency_days)
        app.state.auth = Authenticator(KeyStore(url), settings.sync_seconds,
                                       FailureLimiter(settings.auth_max_failures, settings.auth_window_seconds))
        purged = app.state.predictions.purge_texts()
        if purged:
            log.info("retention: blanked the texts of %d predictions older than %d days", purged,
                     settings.text_retention_days)
        app.state.idempotency.purge()
        app.state.model = model
        metrics.CASE_INDEX_SIZE.set(len(model.cases))
        metrics.CASE_SEQUENCE.set(app.state.follower.seq)
        sync = Sync(app, settings.sync_seconds).start()
        app.state.batcher = MicroBatcher(triage.batch_processor(app), window=settings.batch_window_ms / 1000,
                                         max_batch=settings.batch_max_texts, max_in_flight=settings.max_in_flight,
                                         retry_after=settings.retry_after_seconds).start()
        watcher = CurrentWatcher(app, settings.watch_current_seconds).start() if settings.watch_current_seconds else None
        if app.state.auth.is_open():
            log.warning("no API key is configured: every caller is treated as the local admin "
                        "(create one with `python -m api keys create`)")
        log.info("serving bundle %s with %d knowledge-base cases", model.version, len(model.cases),
                 extra={"bundle": served_bundle(model), "case_sequence": app.state.follower.seq})
        yield
        if watcher:
            watcher.stop()
        sync.stop()
        await app.state.batcher.stop()
        for name in ("batcher", "model", "store", "follower", "predictions", "idempotency"):
            setattr(app.state, name, None)

    app = FastAPI(title="Complaint triage service", version="0.1.0", lifespan=lifespan,
                  description="Grades Chinese customer complaints: type, severity (一般/重点/危机), "
                              "emotion and intensity, with evidence and similar past cases. Every route but "
                              "/healthz, /readyz and /metrics needs `Authorization: Bearer <API key>` once a "
                              "key exists (roles: intake, supervisor, admin).")
    app.state.settings = settings
    app.state.model = None
    app.state.auth = None
    app.state.batcher = None
    errors.install(app)
    app.include_router(meta.router)
    app.include_router(triage.router)
    app.include_router(cases.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(Observe)                         # outermost: sees every answer, BodyGuard's too
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


def app_from_env() -> FastAPI:
    """The app of one worker process of ``python -m api --workers N`` (uvicorn's factory):
    settings from the environment, logs configured in the worker itself."""
    import os

    from api.observe import configure_logging

    settings = Settings()
    configure_logging(os.environ.get("TRIAGE_LOG_LEVEL", "info"), settings.json_logs)
    return create_app(settings)

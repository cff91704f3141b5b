"""Which bundle the service serves: reloads as database-recorded decisions that every worker
follows, and the optional ``models/CURRENT`` watcher.

A reload (``POST /v1/admin/reload``, or the watcher) loads and verifies the bundle beside the
served one, records the decision in the database (``bundle_decisions``), then swaps it in with
one assignment; requests already running finish on the model they started with. Every other
worker sees the decision within ``TRIAGE_SYNC_SECONDS`` (:mod:`api.sync`) and loads the same
bundle folder. A bundle that cannot be loaded leaves the served one in place (409), and nothing
is recorded. Messages name bundles, never the server's folders.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from api import metrics
from api.errors import ApiError
from triage.errors import TriageError

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
# A reload that cannot load its bundle keeps the served one: 409 (a conflict with the state
# asked for), whatever the bundle error's own status.
RELOAD_STATUS = 409


def scrub_paths(message: str, models_dir: Path) -> str:
    """A bundle error's message with the server's folders left out (callers see bundle names)."""
    for folder in {str(Path(models_dir).resolve()), str(models_dir)}:
        message = message.replace(folder + "/", "").replace(folder, "models")
    return message


def bundle_to_serve(settings, name: str | None = None) -> Path | None:
    from triage.bundle import current_bundle

    if name:
        return settings.models_dir / name
    return settings.bundle or current_bundle(settings.models_dir)


def served_bundle(model) -> str:
    """The folder name of the bundle ``model`` was loaded from."""
    return Path(model.meta.get("path", "")).name if model is not None else ""


def reload_model(app, name: str | None = None, decided_by: str = "admin", record: bool = True) -> dict:
    """Load the bundle (``name``, else ``settings.bundle`` or models/CURRENT), record the
    decision (``record``) and swap it in; the knowledge-base index and the encoder are kept.
    Raises ApiError 409 when the bundle cannot be served."""
    from triage.bundle import load_bundle

    with _LOCK:                                  # one reload at a time in this process
        old = app.state.model
        if old is None:
            raise ApiError("MODEL_NOT_READY", "no model is loaded yet; retry shortly")
        settings = app.state.settings
        try:
            path = bundle_to_serve(settings, name)
            if path is None:
                raise ApiError("BUNDLE_NOT_FOUND", f"kept serving {old.version}: models/CURRENT is missing",
                               status=RELOAD_STATUS)
            new = load_bundle(path, old.encoder, max_chars=settings.max_text_chars)
        except TriageError as exc:
            raise ApiError(exc.code, f"kept serving {old.version}: {scrub_paths(exc.message, settings.models_dir)}",
                           status=RELOAD_STATUS) from None
        serving = getattr(app.state, "serving", None)
        if record and serving is not None:
            latest = serving.latest()
            if latest is not None and latest["bundle"] == path.name:
                app.state.decision = latest
            else:
                seq = serving.decide(path.name, new.version, decided_by)
                app.state.decision = {"seq": seq, "bundle": path.name, "model_version": new.version}
            metrics.BUNDLE_DECISION.set(app.state.decision["seq"])
        new.cases = old.cases                    # the database is the source of truth for cases
        app.state.model = new                    # one assignment: in-flight requests keep `old`
        log.info("reloaded: now serving %s (was %s)", new.version, old.version,
                 extra={"bundle": path.name, "decided_by": decided_by})
        return {"model_version": new.version, "previous_version": old.version, "changed": new.version != old.version,
                "bundle": path.name, "decision": (getattr(app.state, "decision", None) or {}).get("seq")}


class CurrentWatcher:
    """Polls ``models/CURRENT``; when it names another bundle than the one served, reloads."""

    def __init__(self, app, every: float) -> None:
        self.app, self.every = app, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="current-watcher", daemon=True)

    def start(self) -> "CurrentWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from triage.bundle import current_bundle

        while not self._stop.wait(self.every):
            try:
                model = self.app.state.model
                path = current_bundle(self.app.state.settings.models_dir)
                if model is not None and path is not None and path.name != served_bundle(model):
                    reload_model(self.app, decided_by="current-watcher")
            except (ApiError, TriageError, OSError) as exc:
                log.error("CURRENT watcher: %s", getattr(exc, "message", type(exc).__name__))
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive a database hiccup
                log.error("CURRENT watcher: %s", type(exc).__name__)

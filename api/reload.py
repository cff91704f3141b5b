"""Swapping the served bundle at run time (the admin route and the optional CURRENT watcher)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from api.errors import ApiError
from triage.errors import TriageError

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
# A reload that cannot load its bundle keeps the served one: 409 (a conflict with the state
# asked for), whatever the bundle error's own status.
RELOAD_STATUS = 409


def scrub_paths(message: str, models_dir: Path) -> str:
    """A bundle error's message with the server's folders left out (callers see bundle names)."""
    return message.replace(str(Path(models_dir).resolve()) + "/", "").replace(str(models_dir) + "/", "")


def bundle_to_serve(settings, name: str | None = None) -> Path | None:
    from triage.bundle import current_bundle

    if name:
        return settings.models_dir / name
    return settings.bundle or current_bundle(settings.models_dir)


def reload_model(app, name: str | None = None) -> dict:
    """Load the bundle and swap it in; the knowledge-base index (the database's cases) and the
    encoder are kept. Raises ApiError 409 when the bundle cannot be served."""
    from triage.bundle import load_bundle

    with _LOCK:                                  # one reload at a time
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
                           status=RELOAD_STATUS) from exc
        new.cases = old.cases                    # the database is the source of truth for cases
        app.state.model = new                    # one assignment: in-flight requests keep `old`
        log.info("reloaded: now serving %s (was %s)", new.version, old.version)
        return {"model_version": new.version, "previous_version": old.version, "changed": new.version != old.version}


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
                served = Path(model.meta.get("path", "")).name if model is not None else None
                if model is not None and path is not None and path.name != served:
                    reload_model(self.app)
            except (ApiError, TriageError, OSError) as exc:
                log.error("CURRENT watcher: %s", getattr(exc, "message", exc))

"""Keeps this worker in agreement with the database: a background thread that applies case
changes to the in-memory index (:class:`triage.store.CaseFollower`) and follows reload
decisions, at least every ``TRIAGE_SYNC_SECONDS`` / 4 — so any change reaches every worker well
within ``TRIAGE_SYNC_SECONDS``. On PostgreSQL it also ``LISTEN``s on the channel writers
``NOTIFY``, and wakes at once; polling stays as the fallback if that connection drops.
"""
from __future__ import annotations

import logging
import threading
import time

from api import metrics
from api.errors import ApiError
from api.reload import reload_model, served_bundle
from triage.db import is_postgres, mask_url
from triage.errors import TriageError
from triage.store import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class Sync:
    def __init__(self, app, seconds: float) -> None:
        self.app = app
        self.poll = max(seconds / 4, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-sync", daemon=True)
        self._failed_decision: int | None = None
        self._next_listen = 0.0

    def start(self) -> "Sync":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def step(self) -> None:
        """Apply new case changes, then follow the newest reload decision."""
        state = self.app.state
        follower = state.follower
        if follower.catch_up():
            metrics.CASE_INDEX_SIZE.set(len(follower.index))
            metrics.CASE_SEQUENCE.set(follower.seq)
        latest = state.serving.latest()
        current = getattr(state, "decision", None)
        if latest is None or (current is not None and current["seq"] >= latest["seq"]):
            return
        if latest["seq"] == self._failed_decision:
            return
        if latest["bundle"] == served_bundle(state.model):
            state.decision = latest
            metrics.BUNDLE_DECISION.set(latest["seq"])
            return
        try:
            reload_model(self.app, latest["bundle"], record=False)
            state.decision = latest
            metrics.BUNDLE_DECISION.set(latest["seq"])
        except (ApiError, TriageError) as exc:
            self._failed_decision = latest["seq"]
            state.decision_error = {"seq": latest["seq"], "bundle": latest["bundle"],
                                    "message": getattr(exc, "message", type(exc).__name__)}
            log.error("cannot follow reload decision %d (bundle %s): %s", latest["seq"], latest["bundle"],
                      state.decision_error["message"])

    def _run(self) -> None:
        listener = None
        while not self._stop.is_set():
            if listener is None and is_postgres(self.app.state.store.engine) and time.monotonic() >= self._next_listen:
                listener = self._listen()
                if listener is None:
                    self._next_listen = time.monotonic() + 30        # poll meanwhile; try again later
            try:
                if listener is not None:
                    for _ in listener.notifies(timeout=self.poll, stop_after=1):
                        pass
                else:
                    self._stop.wait(self.poll)
            except Exception as exc:  # noqa: BLE001 - a dropped LISTEN connection: poll, reconnect later
                log.warning("change notifications stopped (%s); polling", type(exc).__name__)
                listener = self._close(listener)
                self._stop.wait(self.poll)
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the follower must outlive a database hiccup
                log.error("sync with the database failed: %s", type(exc).__name__)
        self._close(listener)

    def _listen(self):
        import psycopg

        url = self.app.state.store.engine.url
        try:
            conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                                   autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            return conn
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot LISTEN on %s (%s); polling every %.2f s", mask_url(url), type(exc).__name__,
                        self.poll)
            return None

    @staticmethod
    def _close(conn):
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        return None

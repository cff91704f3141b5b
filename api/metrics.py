"""Prometheus metrics (prometheus-client), served at ``/metrics``.

With several worker processes (``python -m api --workers N``) every worker writes its samples
to ``PROMETHEUS_MULTIPROC_DIR`` (the command sets it) and ``/metrics`` merges them, whichever
worker answers; gauges that belong to one worker (index size, sequence) carry its ``pid``.
No metric carries complaint text or an id: labels are routes, statuses, grades, types and
model versions.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REQUEST_SECONDS = Histogram("triage_request_duration_seconds", "HTTP request latency by route, method and status",
                            ["route", "method", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
IN_FLIGHT = Gauge("triage_requests_in_flight", "HTTP requests being served", multiprocess_mode="livesum")
PREDICTIONS = Counter("triage_predictions_total", "Recorded predictions by severity grade, complaint type and model",
                      ["grade", "complaint_type", "model_version"])
REVIEWS = Counter("triage_feedback_total", "Supervisors' feedback records")
CORRECTIONS = Counter("triage_corrections_total", "Corrected fields in feedback, by field", ["field"])
CASE_INDEX_SIZE = Gauge("triage_case_index_size", "Cases in this worker's in-memory index", multiprocess_mode="all")
CASE_SEQUENCE = Gauge("triage_case_sequence", "The last case change this worker applied", multiprocess_mode="all")
BUNDLE_DECISION = Gauge("triage_bundle_decision", "The reload decision this worker serves (0: none yet)",
                        multiprocess_mode="all")
AUTH_FAILURES = Counter("triage_auth_failures_total", "Refused authentication attempts by reason", ["reason"])


def record_predictions(answers: list[dict]) -> None:
    for a in answers:
        PREDICTIONS.labels(grade=a["severity"]["label"], complaint_type=a["complaint_type"]["label"],
                           model_version=a.get("model_version", "")).inc()


def record_feedback(corrections: dict) -> None:
    REVIEWS.inc()
    for field in corrections:
        CORRECTIONS.labels(field=field).inc()


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type (merged over workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


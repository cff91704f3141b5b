"""Bulk triage on Ray Data: ``python -m triage predict --engine ray``.

The input (JSONL, CSV or Parquet; a local path or any path Ray reads, such as ``s3://``) is read
by Ray in blocks. A pool of Ray actors — each loads the bundle and the encoder once — triages
the blocks in batches (one encode per batch, as everywhere); Ray schedules the blocks over the
actors of the local machine or of the cluster named by ``ray_address``, and a block whose actor
dies is retried on a restarted one. The results come back to the driver in the input's order
and are written to one Parquet or JSONL file there, each with the record's ``id``; a record
that cannot be triaged (no text, an over-long or invalid text, a JSONL line that is not a JSON
object) gets a row with its error instead, and is reported on stderr with its row number.

Row layout: JSONL output lines are the same answers the single-process path writes
(``{"id", ...answer}`` or ``{"id", "error": {"code", "message"}}``). Parquet output has the
columns ``row`` (0-based input position), ``id``, ``answer`` (the answer as JSON text, null for
an error), ``error_code`` and ``error_message``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import InputError
from triage.text import validate_text

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def input_format(path: str) -> str:
    suffix = Path(str(path).rstrip("/")).suffix.lower()
    if suffix not in FORMATS:
        raise InputError("BULK_FORMAT", f"cannot tell the format of {path}: use .jsonl, .csv or .parquet")
    return FORMATS[suffix]


@dataclass
class BulkSummary:
    rows: int
    answered: int
    rejected: int


class _Triager:
    """The Ray actor: loads the bundle once, then triages batches of records."""

    def __init__(self, bundle: str, encoder: str, threads: int, fmt: str) -> None:
        from triage.bundle import load_bundle

        self.fmt = fmt
        self.model = load_bundle(bundle, _make_encoder(encoder, threads))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        records = _records(batch, self.fmt)
        out = {"row": [int(r) for r in batch["row"]], "id": [], "answer": [], "error_code": [], "error_message": []}
        good: list[int] = []
        for k, (id_, text, problem) in enumerate(records):
            out["id"].append(id_)
            out["answer"].append(None)
            out["error_code"].append(None)
            out["error_message"].append(None)
            if problem is None:
                try:
                    validate_text(text, self.model.max_chars)
                except InputError as exc:
                    problem = ("BAD_TEXT", exc.message)
            if problem is not None:
                out["error_code"][k], out["error_message"][k] = problem
            else:
                good.append(k)
        if good:
            answers = self.model.triage([records[k][1] for k in good], [records[k][0] for k in good])
            for k, answer in zip(good, answers):
                out["answer"][k] = json.dumps(answer, ensure_ascii=False)
        return out


def _make_encoder(name: str, threads: int):
    if name == "e5-small":
        from triage.encoder.e5 import E5Encoder

        return E5Encoder(threads=threads)
    from triage.encoder import get_encoder

    return get_encoder(name)


def _records(batch: dict[str, Any], fmt: str) -> list[tuple[str | None, Any, tuple[str, str] | None]]:
    """``(id, text, problem)`` for each row of a batch; JSONL lines are parsed here, so a bad
    line is one bad row rather than a failed read."""
    out = []
    if fmt == "jsonl":
        for line in batch["text"]:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append((None, None, ("INVALID_JSON", f"not valid JSON ({exc.msg})")))
                continue
            if not isinstance(rec, dict):
                out.append((None, None, ("RECORD_NOT_OBJECT", f"expected a JSON object, got {type(rec).__name__}")))
                continue
            out.append((_id(rec.get("id")), rec.get("text"), None))
        return out
    ids = batch["id"] if "id" in batch else [None] * len(batch["text"])
    for id_, text in zip(ids, batch["text"]):
        out.append((_id(id_), None if _missing(text) else text, None))
    return out


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _id(value) -> str | None:
    return None if _missing(value) else str(value)


def read_dataset(path: str, fmt: str):
    """The input as a Ray dataset with a ``text`` column (the raw line, for JSONL) and an ``id``
    column when the file has one."""
    import ray.data

    if fmt == "jsonl":
        ds = ray.data.read_text(path, drop_empty_lines=True)        # as the local path skips them
    elif fmt == "csv":
        ds = ray.data.read_csv(path)
    else:
        ds = ray.data.read_parquet(path)
    if "text" not in ds.columns():
        raise InputError("BULK_NO_TEXT", f"{path} has no 'text' column (columns: {ds.columns()})")
    keep = [c for c in ("id", "text") if c in ds.columns()]
    return ds.select_columns(keep)


def predict_ray(bundle: str | Path, input_path: str, output: Path, *, ray_address: str | None = None,
                workers: int | None = None, batch_size: int = 64, encoder: str = "e5-small",
                threads_per_worker: int = 1) -> BulkSummary:
    """Triage every record of ``input_path`` on Ray and write the answers to ``output`` (``.parquet``
    or ``.jsonl``) in the input's order; returns the counts."""
    import ray

    fmt = input_format(input_path)
    out_fmt = FORMATS.get(output.suffix.lower())
    if out_fmt not in ("jsonl", "parquet"):
        raise InputError("BULK_FORMAT", f"write .parquet or .jsonl, not {output}")
    if ray_address is None:
        # one logical CPU beyond the workers' for Ray Data's reading and numbering tasks, which
        # would otherwise wait for CPUs the workers hold for the whole run
        workers = workers or os.cpu_count() or 1
        ray.init(num_cpus=workers * threads_per_worker + 1, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True         # blocks come back in input order
        ds = _numbered(read_dataset(input_path, fmt))
        # a cluster's CPUs less one, for the same reason as above
        n_workers = workers or max(1, (int(ray.cluster_resources().get("CPU", 2)) - 1) // threads_per_worker)
        results = ds.map_batches(
            _Triager, fn_constructor_kwargs={"bundle": str(bundle), "encoder": encoder,
                                             "threads": threads_per_worker, "fmt": fmt},
            batch_size=batch_size, batch_format="numpy", concurrency=n_workers, num_cpus=threads_per_worker,
            max_restarts=3, max_task_retries=3)
        return _write(results.iter_batches(batch_size=1024, batch_format="numpy"), output, out_fmt)
    finally:
        ray.shutdown()


def _numbered(ds) -> Any:
    """Add the ``row`` column (0-based input position): the dataset zipped, row by row, with a
    range of the same length (Ray gives rows no position of their own)."""
    import ray.data

    numbers = ray.data.range(ds.count()).map_batches(lambda b: {"row": b["id"]}, batch_format="numpy")
    return ds.zip(numbers)


def _write(batches, output: Path, fmt: str) -> BulkSummary:
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = answered = rejected = 0
    writer = None
    fh = output.open("w", encoding="utf-8") if fmt == "jsonl" else None
    try:
        for b in batches:
            for k in range(len(b["row"])):
                row, id_ = int(b["row"][k]), b["id"][k]
                answer, code, message = b["answer"][k], b["error_code"][k], b["error_message"][k]
                rows += 1
                if answer is None:
                    rejected += 1
                    print(f"row {row}: {code}: {message}", file=sys.stderr)
                else:
                    answered += 1
                if fh is not None:
                    rec = json.loads(answer) if answer is not None else \
                        {"id": id_, "error": {"code": code, "message": message}}
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.table({"row": pa.array(b["row"], pa.int64()),
                                  "id": pa.array(list(b["id"]), pa.string()),
                                  "answer": pa.array(list(b["answer"]), pa.string()),
                                  "error_code": pa.array(list(b["error_code"]), pa.string()),
                                  "error_message": pa.array(list(b["error_message"]), pa.string())})
                if writer is None:
                    writer = pq.ParquetWriter(str(output), table.schema)
                writer.write_table(table)
    finally:
        if fh is not None:
            fh.close()
        if writer is not None:
            writer.close()
    return BulkSummary(rows, answered, rejected)

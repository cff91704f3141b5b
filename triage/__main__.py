"""``python -m triage predict --bundle DIR --input IN.jsonl --output OUT.jsonl [--engine ray]``

Reads records ``{"id", "text"}`` (one JSON object a line) and writes one answer a line, in
order, with the same fields as the API's ``POST /v1/triage``. A bad record is reported with
its line number and written as ``{"id", "error": {"code", "message"}}`` so nothing else is lost.
``--engine ray`` runs the same on Ray Data (:mod:`triage.bulk`): JSONL, CSV or Parquet in,
JSONL or Parquet out, in the input's order.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from triage.errors import InputError, TriageError
from triage.paths import MODELS_DIR
from triage.text import validate_text


def _predict(args: argparse.Namespace) -> int:
    from triage.bundle import current_bundle, load_bundle
    from triage.encoder import get_encoder
    from triage.errors import BundleError

    bundle = args.bundle or current_bundle(args.models_dir)
    if bundle is None:
        raise BundleError("BUNDLE_NOT_FOUND", f"give --bundle or create {args.models_dir}/CURRENT "
                          "(python -m training train)")
    if args.engine == "ray":
        from triage.bulk import predict_ray

        summary = predict_ray(bundle, args.input, args.output, ray_address=args.ray_address,
                              workers=args.workers, batch_size=args.batch_size, encoder=args.encoder,
                              threads_per_worker=args.threads_per_worker)
        print(f"{summary.answered} answered, {summary.rejected} rejected", file=sys.stderr)
        return 1 if summary.rejected else 0
    model = load_bundle(bundle, get_encoder(args.encoder))
    src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    dst = sys.stdout if str(args.output) == "-" else args.output.open("w", encoding="utf-8")
    errors = done = 0
    batch: list[tuple[int, str | None, str]] = []

    def flush() -> None:
        nonlocal done
        if not batch:
            return
        results = model.triage([t for _, _, t in batch], [i for _, i, _ in batch])
        for r in results:
            dst.write(json.dumps(r, ensure_ascii=False) + "\n")
        done += len(results)
        batch.clear()

    def fail(lineno: int, id_, code: str, message: str) -> None:
        nonlocal errors
        flush()
        errors += 1
        print(f"line {lineno}: {code}: {message}", file=sys.stderr)
        dst.write(json.dumps({"id": id_, "error": {"code": code, "message": message}}, ensure_ascii=False) + "\n")

    with src, dst:
        for lineno, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                fail(lineno, None, "INVALID_JSON", f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(rec, dict):
                fail(lineno, None, "RECORD_NOT_OBJECT", f"expected a JSON object, got {type(rec).__name__}")
                continue
            id_ = rec.get("id")
            id_ = None if id_ is None else str(id_)
            text = rec.get("text")
            try:
                validate_text(text, model.max_chars)
            except InputError as exc:
                fail(lineno, id_, "BAD_TEXT", exc.message)
                continue
            batch.append((lineno, id_, text))
            if len(batch) >= args.batch_size:
                flush()
        flush()
    print(f"{done} answered, {errors} rejected", file=sys.stderr)
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="grade a JSONL file of complaints")
    p.add_argument("--bundle", type=Path, help="bundle folder (default: models/CURRENT)")
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    p.add_argument("--input", required=True,
                   help="JSONL with {id, text} records, or - for stdin; with --engine ray also CSV or Parquet "
                        "with text (and id) columns, local or any path Ray reads")
    p.add_argument("--output", type=Path, required=True,
                   help="JSONL answers, or - for stdout; with --engine ray .jsonl or .parquet")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data, blocks over a pool of workers (triage/bulk.py)")
    p.add_argument("--ray-address", help="join this Ray cluster (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, help="Ray workers (default: one per CPU Ray sees)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="encoder threads in each Ray worker")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--encoder", default="e5-small")
    p.set_defaults(func=_predict)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        return args.func(args)
    except (TriageError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

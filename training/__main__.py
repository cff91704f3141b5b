"""``python -m training {train,check-corpus} …`` — see ``--help`` of each command."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from triage.errors import TriageError


def _cmd_train(args: argparse.Namespace) -> int:
    from triage.config import load_config
    from triage.encoder import get_encoder
    from training.train import DEFAULT_CASES, DEFAULT_DATA, train_bundle

    data = args.data or DEFAULT_DATA
    cases = DEFAULT_CASES if args.cases is None else args.cases
    result = train_bundle(get_encoder(args.encoder), data, cases, args.out, load_config(args.config),
                          make_current=not args.no_current, progress=not args.quiet)
    print(f"bundle: {result.path}")
    for head, m in result.metrics["cross_validated"].items():
        if m:
            print(f"  {head:15s} cv macro-F1 {m['macro_f1']:.3f}  accuracy {m['accuracy']:.3f}  ECE {m['ece']:.3f}")
    print(f"  trained in {result.seconds:.1f}s")
    return 0


def _cmd_check_corpus(args: argparse.Namespace) -> int:
    from training import corpus_check
    return corpus_check.main([*(["--no-minimums"] if args.no_minimums else []), *map(str, args.files)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a bundle from labelled complaints")
    t.add_argument("--data", type=Path, nargs="+", help="labelled JSONL files (default: corpora/complaints/*.jsonl)")
    t.add_argument("--cases", type=Path, nargs="*", help="knowledge-base JSONL files (default: corpora/kb/*.jsonl)")
    t.add_argument("--out", type=Path, default=Path("models"), help="models folder (default: models/)")
    t.add_argument("--config", type=Path, help="training config JSON (default: built-in defaults)")
    t.add_argument("--encoder", default="e5-small", help="e5-small (default) or hashing-test")
    t.add_argument("--no-current", action="store_true", help="do not point models/CURRENT at the new bundle")
    t.add_argument("--quiet", action="store_true", help="no progress display")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser("check-corpus", help="validate the labelled corpus and its label minimums")
    c.add_argument("files", type=Path, nargs="*")
    c.add_argument("--no-minimums", action="store_true")
    c.set_defaults(func=_cmd_check_corpus)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

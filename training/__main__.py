"""``python -m training {train,promote,rollback,import,import-shared,import-cases,report,devset,check-corpus} …``
— see ``--help`` of each command."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from triage.errors import TriageError
from triage.paths import MODELS_DIR, REPORTS_DIR, ROOT, VAR_DIR, database_url


def _cmd_train(args: argparse.Namespace) -> int:
    from triage.config import load_config
    from triage.encoder import get_encoder
    from training.train import DEFAULT_DATA, train_bundle

    data = args.data if args.data is not None else ([] if args.feedback and args.base else DEFAULT_DATA)
    extra: list[dict] = []
    kinds: list[str] = []
    if args.data is None and not (args.feedback and args.base) and not args.no_annotations:
        from training.devset import annotated_records
        extra, line = annotated_records(data_root=args.data_root)
        kinds += ["annotations"] if extra else []
        print(line)
    if args.feedback:
        from triage.store import PredictionLog
        fb, stats = PredictionLog(database_url(args.database_url)).training_records()
        extra += fb
        kinds += ["feedback"] if fb else []
        print(f"feedback: {stats['feedback']} corrections of {stats['predictions']} predictions; {stats['usable']} "
              f"usable, {stats['skipped_no_text']} skipped (text no longer retained)")
    result = train_bundle(get_encoder(args.encoder), data, args.cases, args.out, load_config(args.config),
                          make_current=False if args.no_current else None, progress=not args.quiet,
                          base=args.base, extra_records=extra,
                          extra_source=" and ".join(kinds) or "annotations and feedback")
    print(f"bundle: {result.path}")
    crisis = result.metrics.get("crisis") or {}
    if crisis.get("served"):
        print(f"  危机 recall (out-of-fold, served decision) {crisis['served']['recall']:.3f}  "
              f"precision {crisis['served']['precision']:.3f}")
    for head, m in result.metrics["cross_validated"].items():
        if m.get("macro_f1") is not None:
            src = f"  (from {m['from_base']})" if m.get("from_base") else ""
            print(f"  {head:15s} cv macro-F1 {m['macro_f1']:.3f}  accuracy {m['accuracy']:.3f}  ECE {m['ece']:.3f}{src}")
    print(f"  trained in {result.seconds:.1f}s; report: {result.path / 'report.md'}")
    if not result.made_current:
        print(f"  not serving yet: python -m training promote {result.path}")
    return 0


def _load_for_eval(encoder_name: str):
    from triage.bundle import load_bundle
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache

    encoder = EmbeddingCache(get_encoder(encoder_name))
    return lambda path: load_bundle(path, encoder)


def _cmd_promote(args: argparse.Namespace) -> int:
    from training.promote import load_eval_records, promote

    records, name = load_eval_records(args.eval, args.data_root)
    ok = promote(args.bundle, args.models_dir, _load_for_eval(args.encoder), records, name, args.max_f1_drop / 100)
    if ok:
        print("a running service serves it after POST /v1/admin/reload (or within TRIAGE_WATCH_CURRENT_SECONDS)")
    return 0 if ok else 1


def _cmd_rollback(args: argparse.Namespace) -> int:
    from training.promote import rollback

    rollback(args.models_dir)
    print("a running service serves it after POST /v1/admin/reload (or within TRIAGE_WATCH_CURRENT_SECONDS)")
    return 0


def _cmd_devset(args: argparse.Namespace) -> int:
    import json

    from triage.bundle import current_bundle
    from triage.errors import BundleError
    from training.devset import DEVSET, evaluate_devset, load_devset, render_devset

    bundle = args.bundle or current_bundle(args.models_dir)
    if bundle is None:
        raise BundleError("BUNDLE_NOT_FOUND", f"give --bundle or create {args.models_dir}/CURRENT")
    items, problems = load_devset(DEVSET, args.data_root)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    model = _load_for_eval(args.encoder)(bundle)
    result = evaluate_devset(model, items)
    text = render_devset(model.version, result)
    print(text)
    out = args.out or REPORTS_DIR / f"{model.version}-severity-dev.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"report: {out} (and {out.with_suffix('.json')})")
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    import json

    from training.devset import PASSES, pass_agreement, render_agreement

    result = pass_agreement(args.passes or PASSES)
    print(render_agreement(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 0


def _cmd_check_corpus(args: argparse.Namespace) -> int:
    from training import corpus_check
    return corpus_check.main([*(["--no-minimums"] if args.no_minimums else []), *map(str, args.files)])


def _import_records(args: argparse.Namespace) -> list[dict]:
    """Read ``args.input`` with the config and flags given; print the report; [] if nothing kept."""
    from training.importers import config_from_flags, import_file, load_import_config, print_report

    base = load_import_config(args.config) if args.config else None
    cfg = config_from_flags(base, args.map or [], args.labels or [], args.format, args.no_header, args.columns,
                            args.id_column)
    records, report = import_file(args.input, cfg)
    print_report(report)
    if not records:
        print("error: no record was kept; nothing written", file=sys.stderr)
    return records


def _cmd_import(args: argparse.Namespace) -> int:
    from training.importers import write_jsonl

    records = _import_records(args)
    if not records:
        return 1
    write_jsonl(records, args.out)
    print(f"wrote {len(records)} records to {args.out}")
    return 0


def _cmd_import_shared(args: argparse.Namespace) -> int:
    import json

    from training.importers import import_file, load_import_config, print_report, write_jsonl
    from training.shared_data import SHARED_FILES
    from triage.paths import shared_data_dir

    root = shared_data_dir(args.data_root)
    mismatches = 0
    summary = []
    for rel, config, expected in SHARED_FILES:
        records, report = import_file(root / rel, load_import_config(config))
        print_report(report)
        ok = report.read == expected
        mismatches += not ok
        print(f"  rows read {report.read}, data README says {expected}: {'ok' if ok else 'MISMATCH'}")
        out = args.out / (rel.replace("/", "__").rsplit(".", 1)[0] + ".jsonl")
        write_jsonl(records, out)
        summary.append({**report.as_dict(), "path": rel, "expected_rows": expected, "output": str(out)})
    (args.out / "import_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{len(SHARED_FILES)} files imported into {args.out}; {mismatches} row-count mismatches")
    return 1 if mismatches else 0


def _cmd_import_cases(args: argparse.Namespace) -> int:
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache
    from triage.store import CaseStore

    records = _import_records(args)
    if not records:
        return 1
    cases = [{**{k: v for k, v in r.items() if k not in ("id", "source")}, "case_id": r["id"]} for r in records]
    encoder = EmbeddingCache(get_encoder(args.encoder))
    emb = encoder.encode([c["text"] for c in cases], "passage", progress=True)
    url = database_url(args.database_url)
    store = CaseStore(url, encoder.dim)
    for i in range(0, len(cases), 500):
        store.upsert(cases[i:i + 500], emb[i:i + 500])
    from triage.db import mask_url
    print(f"stored {len(cases)} cases in {mask_url(url)} ({store.count()} in all); running services index them "
          "within TRIAGE_SYNC_SECONDS (they follow the change log)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from triage.bundle import current_bundle, load_bundle
    from triage.encoder import get_encoder
    from triage.encoder.cache import EmbeddingCache
    from triage.errors import BundleError
    from training.evaluate import evaluate_types, render_markdown, write_report

    bundle = args.bundle or current_bundle(args.models_dir)
    if bundle is None:
        raise BundleError("BUNDLE_NOT_FOUND", f"give --bundle or create {args.models_dir}/CURRENT")
    model = load_bundle(bundle, EmbeddingCache(get_encoder(args.encoder)))
    results = evaluate_types(model, args.data_root, in_domain=args.in_domain)
    out = write_report(model.version, results, args.out or REPORTS_DIR / f"{model.version}-types.md")
    print(render_markdown(model.version, results).split("\n## ")[0])
    print(f"report: {out} (and {out.with_suffix('.json')})")
    return 0


def _evaluation_args(p: argparse.ArgumentParser, func) -> None:
    """The options shared by the commands that evaluate one bundle on ../shared/data."""
    p.add_argument("--bundle", type=Path, help="default: models/CURRENT")
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    p.add_argument("--data-root", type=Path, help="default: ../shared/data or $TRIAGE_SHARED_DATA")
    p.add_argument("--out", type=Path, help="Markdown report path (a .json is written beside it)")
    p.add_argument("--encoder", default="e5-small")
    p.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a bundle from labelled complaints")
    t.add_argument("--data", type=Path, nargs="+", help="labelled JSONL files (default: corpora/complaints/*.jsonl; "
                   "with --feedback and --base and no --data: the feedback alone)")
    t.add_argument("--no-annotations", action="store_true", help="without --data, the default data also includes the "
                   "annotated real complaints of corpora/annotations joined with ../shared/data when it is there; "
                   "this leaves them out")
    t.add_argument("--data-root", type=Path, help="for the annotations (default: ../shared/data or $TRIAGE_SHARED_DATA)")
    t.add_argument("--feedback", action="store_true", help="add supervisors' corrections from the database as records")
    t.add_argument("--database-url", help="for --feedback (default: TRIAGE_DATABASE_URL or sqlite:///var/triage.db)")
    t.add_argument("--base", type=Path, help="bundle to take heads from when the data has no labels for them "
                   "(also its lexicons and, without --cases, its knowledge-base cases)")
    t.add_argument("--cases", type=Path, nargs="*", help="knowledge-base JSONL files (default: the base's cases, "
                   "else corpora/kb/*.jsonl)")
    t.add_argument("--out", type=Path, default=MODELS_DIR, help="models folder (default: the project's models/)")
    t.add_argument("--config", type=Path, help="training config JSON (default: built-in defaults)")
    t.add_argument("--encoder", default="e5-small", help="e5-small (default) or hashing-test")
    t.add_argument("--no-current", action="store_true", help="never point models/CURRENT at the new bundle (by default "
                   "only the first bundle of a models folder becomes CURRENT; later ones go through promote)")
    t.add_argument("--quiet", action="store_true", help="no progress display")
    t.set_defaults(func=_cmd_train)

    pr = sub.add_parser("promote", help="gate a bundle against the serving one on a fixed evaluation set; "
                        "make it CURRENT if it passes")
    pr.add_argument("bundle", type=Path)
    pr.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    pr.add_argument("--eval", type=Path, help="labelled JSONL evaluation set (default: the severity development set "
                    "joined with ../shared/data)")
    pr.add_argument("--data-root", type=Path, help="default: ../shared/data or $TRIAGE_SHARED_DATA")
    pr.add_argument("--max-f1-drop", type=float, default=1.0, help="points of macro-F1 a head may lose (default 1)")
    pr.add_argument("--encoder", default="e5-small")
    pr.set_defaults(func=_cmd_promote)

    rb = sub.add_parser("rollback", help="point CURRENT back at the bundle the last promotion replaced")
    rb.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    rb.set_defaults(func=_cmd_rollback)

    _evaluation_args(sub.add_parser("devset", help="evaluate a bundle on the annotated severity development set"),
                     _cmd_devset)

    i = sub.add_parser("import", help="turn a CSV/JSONL/JSON/XLSX file into corpus-schema JSONL")
    i.add_argument("input", type=Path)
    i.add_argument("--out", type=Path, required=True, help="output JSONL")
    i.add_argument("--config", help="import config JSON file, or a built-in name (training/import_configs)")
    i.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="e.g. text=review; repeatable; "
                   "COLUMN+COLUMN joins columns")
    i.add_argument("--labels", action="append", metavar="FIELD:SRC=DST,…", help="e.g. complaint_type:0=催收骚扰,1=其他")
    i.add_argument("--format", choices=["csv", "jsonl", "json", "xlsx"])
    i.add_argument("--no-header", action="store_true", help="the CSV has no header row (give --columns)")
    i.add_argument("--columns", help="column names for a header-less CSV, comma-separated")
    i.add_argument("--id-column", help="source column holding record ids (default: row numbers)")
    i.set_defaults(func=_cmd_import)

    s = sub.add_parser("import-shared", help="import every labelled file of ../shared/data with its built-in config")
    s.add_argument("--data-root", type=Path, help="default: ../shared/data or $TRIAGE_SHARED_DATA")
    s.add_argument("--out", type=Path, default=VAR_DIR / "imported", help="output folder (git-ignored var/)")
    s.set_defaults(func=_cmd_import_shared)

    k = sub.add_parser("import-cases", help="bulk-load knowledge-base cases from a file into the database")
    k.add_argument("input", type=Path)
    k.add_argument("--config", help="import config JSON file or built-in name; map text, resolution, response, …")
    k.add_argument("--map", action="append", metavar="FIELD=COLUMN")
    k.add_argument("--labels", action="append", metavar="FIELD:SRC=DST,…")
    k.add_argument("--format", choices=["csv", "jsonl", "json", "xlsx"])
    k.add_argument("--no-header", action="store_true")
    k.add_argument("--columns")
    k.add_argument("--id-column", help="source column holding case ids (default: row numbers)")
    k.add_argument("--database-url", help="default: TRIAGE_DATABASE_URL or sqlite:///var/triage.db")
    k.add_argument("--encoder", default="e5-small")
    k.set_defaults(func=_cmd_import_cases)

    r = sub.add_parser("report", help="evaluate a bundle's complaint types on real data in ../shared/data")
    r.add_argument("--in-domain", action="store_true",
                   help="also train the bundle's recipe on each source itself (5-fold cross-validation) as a reference")
    _evaluation_args(r, _cmd_report)

    a = sub.add_parser("agreement", help="agreement (κ, confusion) between the two annotation passes behind the "
                       "settled severity labels")
    a.add_argument("--passes", type=Path, help="default: corpora/annotations/reannotation_passes.jsonl")
    a.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "annotation_agreement.json")
    a.set_defaults(func=_cmd_agreement)

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

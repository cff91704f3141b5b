"""Import labelled complaints from CSV, JSONL/JSON or XLSX into the corpus schema.

An :class:`ImportConfig` (a small JSON file, or flags on the command line) says which source
column feeds which field and how source labels map to ours::

    {"format": "csv", "header": false, "columns": ["text", "label"],
     "fields": {"text": "text", "complaint_type": "label"},
     "labels": {"complaint_type": {"0": "催收骚扰", "1": "其他", …}},
     "constants": {"industry": "banking"}}

Every record is validated — missing or empty text, unknown labels, duplicates, bad encoding,
absurd length — and nothing is dropped silently: :class:`ImportReport` counts what was read,
kept and dropped and why, with the first examples of each reason (row numbers are 1-based
data rows, header excluded).
"""
from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triage.errors import ConfigError, DataError
from triage.vocab import LABEL_DOMAINS as DOMAINS
from triage.text import normalise

CONFIG_DIR = Path(__file__).resolve().parent / "import_configs"


class ImportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl", "json", "xlsx"] | None = None     # None: from the file's ending
    header: bool = True
    columns: list[str] | None = None          # names for a header-less CSV
    sheet: str | int = 0
    encoding: str = "utf-8"
    delimiter: str = ","
    fields: dict[str, str | list[str]] = Field(..., description="target field -> source column(s); "
                                               "several columns are joined with a newline")
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    exclude: dict[str, list[str]] = Field(default_factory=dict, description="drop records whose "
                                          "source value is listed (reason: excluded)")
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict, description="metadata key -> source column")
    id_column: str | None = None
    id_prefix: str = "rec"
    min_chars: int = Field(2, ge=1)
    max_chars: int = Field(5000, ge=10)
    dedupe: bool = True


def load_import_config(spec: str | Path) -> ImportConfig:
    """A config file path, or the name of a built-in config in ``training/import_configs``."""
    path = Path(spec)
    if not path.is_file() and (CONFIG_DIR / f"{spec}.json").is_file():
        path = CONFIG_DIR / f"{spec}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise ConfigError("IMPORT_CONFIG_NOT_FOUND", f"import config {spec!r} is neither a file nor a "
                          f"built-in config (built-in: {known})")
    try:
        return ImportConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ConfigError("IMPORT_CONFIG_BAD_JSON", f"{path} is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError("IMPORT_CONFIG_INVALID", f"{path}: {exc}") from exc


@dataclass
class ImportReport:
    source: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    label_counts: dict[str, Counter] = field(default_factory=dict)

    def drop(self, reason: str, row: int, detail: str = "") -> None:
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(f"row {row}" + (f": {detail}" if detail else ""))

    def render(self) -> str:
        lines = [f"{self.source}: read {self.read}, kept {self.kept}, dropped {sum(self.dropped.values())}"]
        for reason, n in self.dropped.most_common():
            lines.append(f"  dropped {n:6d}  {reason}  (e.g. {'; '.join(self.examples[reason])})")
        for f, counts in self.label_counts.items():
            lines.append(f"  {f}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"source": self.source, "read": self.read, "kept": self.kept, "dropped": dict(self.dropped),
                "label_counts": {k: dict(v) for k, v in self.label_counts.items()}}


def _rows(path: Path, cfg: ImportConfig) -> Iterator[dict]:
    fmt = cfg.format or {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "json",
                         ".xlsx": "xlsx"}.get(path.suffix.lower())
    if fmt is None:
        raise DataError("IMPORT_FORMAT", f"cannot tell the format of {path.name}: give format "
                        "csv, jsonl, json or xlsx")
    if fmt == "csv":
        with path.open(encoding=cfg.encoding, errors="replace", newline="") as fh:
            if cfg.header:
                reader = csv.DictReader(fh, delimiter=cfg.delimiter)
                for row in reader:
                    yield {k.lstrip("\ufeff") if k else k: v for k, v in row.items()}
            else:
                if not cfg.columns:
                    raise ConfigError("IMPORT_CONFIG_INVALID", "a CSV without a header needs 'columns'")
                for values in csv.reader(fh, delimiter=cfg.delimiter):
                    yield dict(zip(cfg.columns, values))
    elif fmt == "jsonl":
        with path.open(encoding=cfg.encoding, errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    yield {"__error__": f"line {n} is not valid JSON"}
                    continue
                yield obj if isinstance(obj, dict) else {"__error__": f"line {n} is not an object"}
    elif fmt == "json":
        data = json.loads(path.read_text(encoding=cfg.encoding, errors="replace"))
        if not isinstance(data, list):
            raise DataError("IMPORT_FORMAT", f"{path.name}: a .json import must hold a list of objects")
        for obj in data:
            yield obj if isinstance(obj, dict) else {"__error__": "element is not an object"}
    else:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        ws = wb[cfg.sheet] if isinstance(cfg.sheet, str) else wb.worksheets[cfg.sheet]
        it = ws.iter_rows(values_only=True)
        names = [str(c) if c is not None else "" for c in next(it)] if cfg.header else cfg.columns
        if names is None:
            raise ConfigError("IMPORT_CONFIG_INVALID", "an XLSX without a header needs 'columns'")
        for values in it:
            if values is None or all(v is None for v in values):
                continue
            yield dict(zip(names, values))
        wb.close()


_MOJIBAKE = re.compile(r"[\ufffd]|[ÃÂÐÑæåçèéäöü][\x80-\xbf]")


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _bad_encoding(text: str) -> bool:
    if _MOJIBAKE.search(text):
        return True
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r")
    return controls > 0


def import_file(path: str | Path, cfg: ImportConfig) -> tuple[list[dict], ImportReport]:
    """Read ``path`` with ``cfg``; return the kept records and the report."""
    path = Path(path)
    if not path.is_file():
        raise DataError("IMPORT_NOT_FOUND", f"input file {path} does not exist")
    if "text" not in cfg.fields:
        raise ConfigError("IMPORT_CONFIG_INVALID", "fields must map 'text' to a source column")
    report = ImportReport(source=path.name)
    seen: set[str] = set()
    out: list[dict] = []
    checked_columns = False
    for row_no, row in enumerate(_rows(path, cfg), 1):
        report.read += 1
        if "__error__" in row:
            report.drop("unreadable", row_no, row["__error__"])
            continue
        if not checked_columns:
            wanted = {c for v in cfg.fields.values() for c in ([v] if isinstance(v, str) else v)}
            wanted |= set(cfg.metadata.values()) | ({cfg.id_column} if cfg.id_column else set())
            missing = sorted(c for c in wanted if c not in row)
            if missing:
                raise DataError("IMPORT_MISSING_COLUMNS", f"{path.name}: columns {missing} are not in the "
                                f"source (it has {sorted(row)})")
            checked_columns = True
        rec: dict = {}
        problem = None
        for target, source in cfg.fields.items():
            cols = [source] if isinstance(source, str) else source
            parts = [_as_text(row.get(c)).strip() for c in cols]
            value = "\n".join(p for p in parts if p)
            if target in cfg.exclude and value in cfg.exclude[target]:
                problem = ("excluded", f"{target}={value!r}")
                break
            if target in cfg.labels:
                if value not in cfg.labels[target]:
                    problem = (f"unknown label for {target}", repr(value))
                    break
                value = cfg.labels[target][value]
            if target in DOMAINS and value not in DOMAINS[target]:
                problem = (f"unknown label for {target}", repr(value))
                break
            if target == "text" or value != "":
                rec[target] = int(value) if target == "intensity" else value
        if problem:
            report.drop(problem[0], row_no, problem[1])
            continue
        text = rec["text"]
        if not text.strip():
            report.drop("missing or empty text", row_no)
            continue
        if _bad_encoding(text):
            report.drop("bad encoding", row_no, repr(text[:20]))
            continue
        if not cfg.min_chars <= len(text) <= cfg.max_chars:
            report.drop("absurd length", row_no, f"{len(text)} characters (allowed {cfg.min_chars}–{cfg.max_chars})")
            continue
        key = "".join(normalise(text).split())
        if cfg.dedupe and key in seen:
            report.drop("duplicate text", row_no)
            continue
        seen.add(key)
        rid = _as_text(row.get(cfg.id_column)).strip() if cfg.id_column else ""
        rec["id"] = rid or f"{cfg.id_prefix}-{row_no}"
        rec.update({k: v for k, v in cfg.constants.items() if k not in rec})
        meta = {k: _as_text(row.get(c)).strip() for k, c in cfg.metadata.items() if _as_text(row.get(c)).strip()}
        if meta:
            rec["metadata"] = meta
        rec["source"] = {"file": path.name, "row": row_no}
        for target in rec:
            if target in cfg.labels or target in DOMAINS:
                report.label_counts.setdefault(target, Counter())[str(rec[target])] += 1
        out.append(rec)
        report.kept += 1
    return out, report


def write_jsonl(records: list[dict], path: str | Path) -> None:
    """Write records atomically (temporary file, then rename)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def config_from_flags(base: ImportConfig | None, maps: list[str], labels: list[str],
                      fmt: str | None, no_header: bool, columns: str | None,
                      id_column: str | None = None) -> ImportConfig:
    """Merge command-line flags into a config: ``--map text=review``,
    ``--labels complaint_type:0=催收骚扰,1=其他``, ``--columns text,label --no-header``."""
    data = base.model_dump() if base else {"fields": {}}
    for m in maps:
        if "=" not in m:
            raise ConfigError("IMPORT_FLAG", f"--map takes FIELD=COLUMN[+COLUMN], got {m!r}")
        target, source = m.split("=", 1)
        data["fields"][target.strip()] = source.split("+") if "+" in source else source.strip()
    for spec in labels:
        if ":" not in spec:
            raise ConfigError("IMPORT_FLAG", f"--labels takes FIELD:SRC=DST,SRC=DST, got {spec!r}")
        target, pairs = spec.split(":", 1)
        mapping = data.setdefault("labels", {}).setdefault(target.strip(), {})
        for pair in pairs.split(","):
            if "=" not in pair:
                raise ConfigError("IMPORT_FLAG", f"--labels pair must be SRC=DST, got {pair!r}")
            src, dst = pair.split("=", 1)
            mapping[src.strip()] = dst.strip()
    if fmt:
        data["format"] = fmt
    if no_header:
        data["header"] = False
    if columns:
        data["columns"] = [c.strip() for c in columns.split(",")]
    if id_column:
        data["id_column"] = id_column
    try:
        return ImportConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("IMPORT_CONFIG_INVALID", str(exc)) from exc


def print_report(report: ImportReport, stream=None) -> None:
    print(report.render(), file=stream or sys.stdout)

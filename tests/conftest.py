"""Shared fixtures: a small corpus cut from the project's own corpora, a bundle trained on it
with the tiny offline encoder (session-scoped, each test gets the loaded model), and — for
tests marked ``slow`` — the real e5-small encoder built once per session."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage.bundle import load_bundle
from triage.encoder.hashing import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _subset(files: list[Path], per_file: int) -> list[dict]:
    out = []
    for f in files:
        lines = [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]
        out += [json.loads(ln) for ln in lines[:per_file]]
    return out


@pytest.fixture(autouse=True)
def _private_database(tmp_path, monkeypatch):
    """Every test gets its own knowledge-base database (never the project's var/)."""
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'kb.db'}")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(complaints.jsonl, cases.jsonl): 40 records from each of five corpus slices, 30 cases from each KB file."""
    d = tmp_path_factory.mktemp("corpus")
    slices = ("au", "ec", "fi", "ts", "tu")          # a fixed choice, so the fixture does not move
    complaints = _subset([ROOT / "corpora" / "complaints" / f"{s}.jsonl" for s in slices], 40)
    cases = _subset(sorted((ROOT / "corpora" / "kb").glob("*.jsonl")), 30)
    for name, recs in (("complaints.jsonl", complaints), ("cases.jsonl", cases)):
        (d / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return d / "complaints.jsonl", d / "cases.jsonl"


@pytest.fixture(scope="session")
def test_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, small_corpus, test_encoder) -> Path:
    from training.train import train_bundle

    models = tmp_path_factory.mktemp("models")
    data, cases = small_corpus
    return train_bundle(test_encoder, [data], [cases], models, progress=False,
                        cache_dir=tmp_path_factory.mktemp("emb-cache")).path


@pytest.fixture
def model(tiny_bundle, test_encoder):
    return load_bundle(tiny_bundle, test_encoder)


@pytest.fixture(scope="session")
def e5_encoder():
    from triage.encoder.e5 import E5Encoder
    return E5Encoder()

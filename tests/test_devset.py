"""The severity development set and the training annotations: identifiers and labels only,
validated, joined with ../shared/data when it is there (skipped otherwise)."""
import json

import numpy as np

import pytest

from training.devset import ANNOTATIONS, DEVSET, annotated_records, load_devset, read_labels
from triage.errors import DataError

from conftest import SHARED_DATA

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


def test_the_files_hold_labels_not_texts():
    dev, ann = read_labels(DEVSET), read_labels(ANNOTATIONS)
    assert len(dev) >= 300 and len(ann) >= 300
    assert {g for r in dev for g in [r["severity"]]} == {"一般", "重点", "危机"}
    assert sum(r["severity"] == "危机" for r in dev) >= 50
    assert not {(r["source"], r["key"]) for r in dev} & {(r["source"], r["key"]) for r in ann}
    for r in dev + ann:
        assert set(r) <= {"source", "key", "sha", "severity", "emotion", "intensity", "reason", "drawn", "sampling"}
        assert len(r.get("reason", "")) <= 16


@pytest.mark.parametrize("row,code_part", [
    ({"source": "heimao/dev.csv", "key": "heimao-1", "sha": "x", "severity": "紧急", "emotion": "angry", "intensity": 1}, "severity"),
    ({"source": "nowhere.csv", "key": "1", "sha": "x", "severity": "一般", "emotion": "angry", "intensity": 1}, "source"),
    ({"source": "heimao/dev.csv", "key": "heimao-1", "sha": "x", "severity": "一般", "emotion": "angry", "intensity": 9}, "intensity"),
    ({"source": "heimao/dev.csv", "key": "heimao-1", "sha": "x", "severity": "一般", "emotion": "angry", "intensity": 1,
      "text": "投诉原文"}, "no complaint text"),
])
def test_bad_rows_are_refused(tmp_path, row, code_part):
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        read_labels(path)
    assert exc.value.code == "DEVSET_BAD_LINE" and code_part in exc.value.message and "line 1" in exc.value.message


@needs_data
def test_every_row_joins_with_the_shared_data():
    items, problems = load_devset()
    assert problems == [] and len(items) == len(read_labels(DEVSET))
    assert all(it.text for it in items)


@needs_data
def test_training_annotations_leave_out_near_duplicates_of_the_devset():
    records, line = annotated_records()
    assert 300 <= len(records) <= len(read_labels(ANNOTATIONS)) and "near duplicates" in line
    dev_texts = {it.text for it in load_devset()[0]}
    assert not {r["text"] for r in records} & dev_texts
    assert all("complaint_type" not in r for r in records)


def test_without_the_data_folder_annotations_are_skipped_with_a_message(tmp_path):
    records, line = annotated_records(data_root=tmp_path / "absent")
    assert records == [] and "skipped" in line


class _LengthModel:
    """A stand-in severity head: P(危机) grows with the text's length (for the selection test)."""

    def predict_proba(self, texts):
        p = np.array([min(len(t) / 400, 1.0) for t in texts])
        return {"severity": (["一般", "危机", "重点"], np.stack([(1 - p) / 2, p, (1 - p) / 2], axis=1))}


@needs_data
def test_active_learning_draws_from_the_uncertain_band_and_skips_what_is_annotated():
    from training.devset import select_uncertain
    rel = "heimao/train.csv"
    first = select_uncertain(_LengthModel(), per_source={rel: 8}, low=0.25, high=0.5)
    assert len(first) == 8 and all(100 <= len(r["text"]) <= 200 for r in first)
    again = select_uncertain(_LengthModel(), per_source={rel: 8}, low=0.25, high=0.5,
                             exclude={(r["source"], r["key"]) for r in first})
    assert not {r["key"] for r in first} & {r["key"] for r in again}
    assert select_uncertain(_LengthModel(), per_source={rel: 8}, low=0.25, high=0.5) == first   # seeded


@needs_data
def test_actively_chosen_annotations_are_marked_as_such():
    records, _ = annotated_records()
    marked = [r for r in records if r.get("sampling") in ("uncertain", "enriched")]
    assert 0 < len(marked) < len(records)
    assert all(r["id"].startswith("ann:") for r in marked)

import json

from triage.__main__ import main


def test_predict_jsonl(tiny_bundle, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": "a", "text": "快递丢了三天"}, ensure_ascii=False),
        "not json",
        json.dumps({"id": "b", "text": ""}),
        json.dumps({"id": "c", "text": "刹车突然失灵，差点撞上前车"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    rc = main(["predict", "--bundle", str(tiny_bundle), "--input", str(src), "--output", str(out),
               "--encoder", "hashing-test"])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rc == 1                                  # some lines were rejected
    assert [r.get("id") for r in rows] == ["a", None, "b", "c"]
    assert rows[1]["error"]["code"] == "INVALID_JSON" and rows[2]["error"]["code"] == "BAD_TEXT"
    assert rows[3]["severity"]["label"] == "危机" and "type_candidates" in rows[0]
    assert "line 2" in capsys.readouterr().err


def test_predict_missing_bundle(tmp_path, capsys):
    rc = main(["predict", "--models-dir", str(tmp_path), "--input", "x", "--output", "y", "--encoder", "hashing-test"])
    assert rc == 2 and "BUNDLE_NOT_FOUND" in capsys.readouterr().err

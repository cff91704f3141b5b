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


def test_predict_on_ray_matches_the_local_path(tiny_bundle, tmp_path, capsys):
    """--engine ray (local Ray, two workers, small batches so several blocks and actors take
    part) writes the same answers as the single-process path, in order, bad rows included."""
    texts = ["快递丢了三天", "刹车突然失灵，差点撞上前车", "客服不回复", "信用卡被乱收年费", "退款一直不到账",
             "手机屏幕坏了", "贷款催收打电话骂人", "保险理赔被拒"]
    lines = [json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts * 3)]
    lines[4] = "not json"
    lines[9] = json.dumps({"id": "empty", "text": "  "})
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    common = ["--bundle", str(tiny_bundle), "--input", str(src), "--encoder", "hashing-test", "--batch-size", "4"]
    assert main(["predict", *common, "--output", str(local)]) == 1
    capsys.readouterr()
    assert main(["predict", *common, "--output", str(on_ray), "--engine", "ray", "--workers", "2"]) == 1
    assert on_ray.read_text(encoding="utf-8") == local.read_text(encoding="utf-8")
    err = capsys.readouterr().err
    assert "row 4: INVALID_JSON" in err and "row 9: BAD_TEXT" in err


def test_predict_on_ray_reads_csv_and_writes_parquet(tiny_bundle, tmp_path):
    import pandas as pd

    texts = ["快递丢了三天", None, "刹车突然失灵，差点撞上前车"]
    pd.DataFrame({"id": ["a", "b", "c"], "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.parquet"
    rc = main(["predict", "--bundle", str(tiny_bundle), "--input", str(tmp_path / "in.csv"), "--output", str(out),
               "--encoder", "hashing-test", "--engine", "ray", "--workers", "1"])
    table = pd.read_parquet(out)
    assert rc == 1 and table["row"].tolist() == [0, 1, 2] and table["id"].tolist() == ["a", "b", "c"]
    assert table["error_code"].tolist()[1] == "BAD_TEXT" and table["answer"].isna().tolist() == [False, True, False]
    assert json.loads(table["answer"][2])["severity"]["label"] == "危机"

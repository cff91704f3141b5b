import json

import pytest

from training.__main__ import main as training_main
from training.importers import ImportConfig, config_from_flags, import_file, load_import_config
from training.shared_data import SHARED_FILES
from triage.paths import shared_data_dir
from triage.errors import ConfigError, DataError

HEIMAO_LIKE = "\n".join([
    "借款时说好无息，结果每期多收了服务费,3",
    "催收天天打电话给我单位领导,0",
    ",1",                                         # empty text
    "借款时说好无息，结果每期多收了服务费,3",       # duplicate
    "客服电话永远打不通,9",                        # unknown label
    "好,4",                                       # too short
    "乱码\ufffd\ufffd内容看不清楚,4",               # bad encoding
]) + "\n"


@pytest.fixture
def heimao_like(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text(HEIMAO_LIKE, encoding="utf-8")
    return p


def test_builtin_config_maps_labels_and_reports_every_drop(heimao_like):
    records, report = import_file(heimao_like, load_import_config("heimao"))
    assert [r["complaint_type"] for r in records] == ["价格收费", "催收骚扰"]
    assert report.read == 7 and report.kept == 2
    assert report.dropped == {"missing or empty text": 1, "duplicate text": 1, "unknown label for complaint_type": 1,
                              "absurd length": 1, "bad encoding": 1}
    assert sum(report.dropped.values()) + report.kept == report.read
    assert "row 5" in report.examples["unknown label for complaint_type"][0]
    assert records[0]["source"] == {"file": "h.csv", "row": 1} and records[0]["id"] == "heimao-1"


def test_flags_build_a_config(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"review": "发货太慢了，客服也不理人", "mood": "生气", "grade": "重点", "sku": "A1"},
        {"review": "很满意，下次还来", "mood": "开心", "grade": "一般", "sku": "A2"},
        {"review": "还行吧，一般般", "mood": "开心", "grade": "超级紧急", "sku": "A3"},
    ]) + "\nnot json\n", encoding="utf-8")
    cfg = config_from_flags(None, ["text=review", "emotion=mood", "severity=grade"],
                            ["emotion:生气=angry,开心=happy"], None, False, None)
    records, report = import_file(p, cfg)
    assert [(r["emotion"], r["severity"]) for r in records] == [("angry", "重点"), ("happy", "一般")]
    assert report.dropped == {"unknown label for severity": 1, "unreadable": 1}


def test_xlsx_and_joined_columns(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["编号", "主题", "详情", "回复"])
    ws.append([1, "小区停水三天", "物业说是市政问题，没人管", "已协调供水公司，当日恢复"])
    ws.append([2, None, None, "无"])
    p = tmp_path / "m.xlsx"
    wb.save(p)
    cfg = ImportConfig(fields={"text": ["主题", "详情"], "response": "回复"}, id_column="编号")
    records, report = import_file(p, cfg)
    assert records == [{"text": "小区停水三天\n物业说是市政问题，没人管", "response": "已协调供水公司，当日恢复",
                        "id": "1", "source": {"file": "m.xlsx", "row": 1}}]
    assert report.dropped == {"missing or empty text": 1}


def test_missing_column_is_a_clear_error(heimao_like):
    cfg = ImportConfig(format="csv", header=False, columns=["text", "label"], fields={"text": "body"})
    with pytest.raises(DataError, match="body"):
        import_file(heimao_like, cfg)


@pytest.mark.parametrize("flags, match", [(["textreview"], "--map"), ([], "text")])
def test_bad_flags(flags, match, tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises((ConfigError, DataError), match=match):
        import_file(p, config_from_flags(None, flags, [], None, False, None))


def test_unknown_builtin_config():
    with pytest.raises(ConfigError, match="heimao"):
        load_import_config("no-such-config")


def test_cli_writes_output_and_summary(heimao_like, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert training_main(["import", str(heimao_like), "--config", "heimao", "--out", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    printed = capsys.readouterr().out
    assert "read 7, kept 2, dropped 5" in printed and "duplicate text" in printed


@pytest.mark.skipif(shared_data_dir(required=False) is None, reason="../shared/data is not present")
@pytest.mark.parametrize("rel, config, expected", SHARED_FILES, ids=[r for r, _, _ in SHARED_FILES])
def test_every_shared_file_imports_with_the_readme_row_count(rel, config, expected):
    records, report = import_file(shared_data_dir() / rel, load_import_config(config))
    assert report.read == expected
    assert report.kept + sum(report.dropped.values()) == report.read
    assert report.kept >= 0.9 * expected
    assert all(r["text"].strip() for r in records)


def test_import_cases_into_the_database(tmp_path, capsys):
    from triage.store import CaseStore
    src = tmp_path / "kb.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "g1", "msg": "小区路灯坏了一个月没人修", "reply": "已通知市政维修，三日内修复", "kind": "其他"},
        {"id": "g2", "msg": "物业乱收停车费", "reply": "已责令物业退还多收费用", "kind": "价格收费"},
        {"id": "g3", "msg": ""},
    ]) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    rc = training_main(["import-cases", str(src), "--map", "text=msg", "--map", "response=reply",
                        "--map", "complaint_type=kind", "--id-column", "id", "--database-url", url, "--encoder", "hashing-test"])
    assert rc == 0
    store = CaseStore(url, 64)
    assert store.count() == 2 and store.get("g2")["response"] == "已责令物业退还多收费用"
    assert "dropped 1" in capsys.readouterr().out

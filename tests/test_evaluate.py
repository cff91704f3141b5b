import csv

import pytest

from training.evaluate import classification_metrics, evaluate_types, in_domain_reference, render_markdown


def test_metrics_average_over_the_source_classes():
    m = classification_metrics(["a", "a", "b", "b"], ["a", "c", "b", "b"], ["a", "b"])
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2, abs=1e-4) and m["accuracy"] == 0.75


@pytest.fixture
def fake_root(tmp_path):
    (tmp_path / "heimao").mkdir()
    rows = [("催收人员天天打电话给我家人，还威胁上门", 0), ("借款时说好没有服务费，结果每月多扣两百", 3),
            ("客服电话一直打不通，投诉也没人回复", 4), ("宣传说免息，实际上利息很高", 5)]
    for name in ("train.csv", "dev.csv"):
        with (tmp_path / "heimao" / name).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    (tmp_path / "car_complaints").mkdir()
    with (tmp_path / "car_complaints" / "car_complaints_train.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["投诉编号", "投诉品牌", "投诉车系", "投诉车型", "投诉简述", "投诉问题", "问题类型", "投诉日期"])
        w.writerow(["1", "x", "y", "z", "刹车突然失灵，差点撞车", "制动系", "刹车失灵", "2024-01-01"])
        w.writerow(["2", "x", "y", "z", "销售隐瞒了车辆是展车", "销售欺诈", "欺诈", "2024-01-02"])
    return tmp_path


def test_report_on_both_sources(model, fake_root):
    results = evaluate_types(model, fake_root)
    heimao = results["黑猫 (train+dev)"]
    assert heimao["open"]["n"] == 8 and heimao["labels"] == ["价格收费", "催收骚扰", "服务态度", "虚假宣传"]
    assert set(heimao["within_source_labels"]["per_class"]) == set(heimao["labels"])
    assert results["车质网 (train)"]["files"]["car_complaints/car_complaints_train.csv"]["read"] == 2
    md = render_markdown(model.version, results)
    assert "黑猫 (train+dev)" in md and "macro-F1" in md and "Confusion" in md


def test_report_needs_the_data(model, tmp_path):
    from triage.errors import DataError
    with pytest.raises(DataError, match="SHARED_DATA|not there"):
        evaluate_types(model, tmp_path / "absent")


def test_the_in_domain_reference_is_cross_validated_on_the_source_itself(model):
    texts = ([f"催收员第{i}次打电话骚扰我的家人和同事" for i in range(12)]
             + [f"这笔借款第{i}个月多收了服务费和手续费" for i in range(12)])
    y = ["催收骚扰"] * 12 + ["价格收费"] * 12
    ref = in_domain_reference(model, texts, y, ["价格收费", "催收骚扰"])
    assert ref["folds"] == 5 and ref["n"] == 24
    assert ref["macro_f1"] >= 0.9            # two vocabularies that never overlap: every fold separates them
    shuffled = in_domain_reference(model, texts, ["催收骚扰", "价格收费"] * 12, ["价格收费", "催收骚扰"])
    assert shuffled["macro_f1"] < ref["macro_f1"]    # labels unrelated to the text: nothing to learn


def test_the_report_shows_the_reference_or_why_it_was_skipped(model, fake_root):
    results = evaluate_types(model, fake_root, in_domain=True)
    assert results["黑猫 (train+dev)"]["in_domain_reference"]["n"] == 8
    assert "skipped" in results["车质网 (train)"]["in_domain_reference"]      # two rows, two labels
    md = render_markdown(model.version, results)
    assert "trained on the source itself" in md and "F1 in-domain" in md and "skipped:" in md

"""scripts/compare_reports.py on reports shaped like `streetwatch eval --out` writes (pure logic)."""

import json
from pathlib import Path

import pytest

from testkit import script

compare = script("compare_reports")


def report(path: Path, card: str, tp: int, fp: int) -> Path:
    rates = {"yes": 4, "no": 10, "tp": tp, "fp": fp, "recall": tp / 4, "false_alarm_rate": fp / 10,
             "sweep": [{"threshold": 0.05, "recall": 1.0, "false_alarm_rate": 0.5}]}
    path.write_text(json.dumps({"card": card, "kinds": {"vending": rates},
                                "by_camera": {"cctv": {"vending": rates}, "phone": {"vending": {**rates, "tp": 0,
                                                                                               "recall": 0.0}}}}))
    return path


def test_reports_side_by_side_per_camera(tmp_path: Path) -> None:
    text = compare.table([report(tmp_path / "rule.json", "v3", 1, 0), report(tmp_path / "class.json", "v4", 3, 1)],
                         "vending", sweep=True)
    rows = text.splitlines()
    assert rows[0] == "| report | card | all | cctv | phone |"
    assert rows[2] == "| rule | v3 | 0.25 / 0.00 (1/4, 0/10) | 0.25 / 0.00 (1/4, 0/10) | 0.00 / 0.00 (0/4, 0/10) |"
    assert rows[3].startswith("| class | v4 | 0.75 / 0.10 (3/4, 1/10)")
    assert "class sweep (threshold: recall / false alarms): 0.05: 1.00 / 0.50" in text


def test_a_report_without_the_kind_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "garbage.json"
    path.write_text(json.dumps({"kinds": {"garbage": {}}}))
    assert compare.main([str(path), "--kind", "vending"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "garbage.json" in err and "no kind 'vending'" in err

"""`pytal eval`: the table, --json, and the error paths."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytal.cli import main
from pytal.evaluation import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GT = {"version": "t", "database": {
    "v1": {"subset": "test", "duration": 60.0,
           "annotations": [{"segment": [0, 10], "label": "A"}, {"segment": [20, 30], "label": "B"}]},
    "v2": {"subset": "validation", "duration": 60.0,
           "annotations": [{"segment": [5, 9], "label": "A"}]}}}
PRED = {"version": "t", "external_data": {}, "results": {
    "v1": [{"label": "A", "score": 0.9, "segment": [0, 9]},
           {"label": "B", "score": 0.8, "segment": [25, 30]}]}}


@pytest.fixture
def files(tmp_path):
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(GT))
    pred.write_text(json.dumps(PRED))
    return str(gt), str(pred)


def test_eval_prints_table_and_writes_json(files, tmp_path, capsys):
    gt, pred = files
    out = tmp_path / "out" / "metrics.json"
    assert main(["eval", "--gt", gt, "--pred", pred, "--subset", "test", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    expected = evaluate(gt, pred, subset="test", tiou_thresholds="0.3:0.7:0.1")
    assert "tIoU" in text and "mAP (%)" in text
    for tiou, m_ap in zip(expected["tiou_thresholds"], expected["mAP"]):
        assert f"{tiou:.2f}  {100 * m_ap:>8.2f}" in text
    assert f"avg  {100 * expected['average_mAP']:>8.2f}" in text
    assert json.loads(out.read_text()) == expected
    assert [p for p in os.listdir(out.parent) if p != "metrics.json"] == []   # no temp file left


def test_eval_tiou_preset_and_per_class(files, capsys):
    gt, pred = files
    assert main(["eval", "--gt", gt, "--pred", pred, "--subset", "test", "--tiou", "activitynet",
                 "--per-class"]) == 0
    text = capsys.readouterr().out
    assert "0.95" in text and "\n  A " in text and "\n  B " in text


def test_eval_reports_videos_outside_subset(files, capsys):
    gt, pred = files
    assert main(["eval", "--gt", gt, "--pred", pred, "--subset", "validation"]) == 0
    assert "not in the subset are counted as false positives" in capsys.readouterr().err
    assert main(["eval", "--gt", gt, "--pred", pred, "--subset", "validation",
                 "--unknown-videos", "ignore"]) == 0


@pytest.mark.parametrize("args,message", [
    (["--ckpt", "model.pt"], "checkpoint not found: model.pt"),
    (["--pred", "x.json", "--subset", "test"], "missing --gt"),
    (["--gt", "GT", "--pred", "PRED", "--subset", "train"], "unknown subset 'train'; known subsets: \\['test', 'validation'\\]"),
    (["--gt", "GT", "--pred", "nope.json", "--subset", "test"], "prediction file not found: nope.json"),
    (["--gt", "GT", "--pred", "PRED", "--subset", "test", "--tiou", "0.7:0.3:0.1"], "tIoU"),
])
def test_eval_errors(files, capsys, args, message):
    gt, pred = files
    args = [gt if a == "GT" else pred if a == "PRED" else a for a in args]
    assert main(["eval", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pytal eval: error: ")
    assert __import__("re").search(message, err), err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "eval" in capsys.readouterr().out


def test_python_dash_m(files, tmp_path):
    gt, pred = files
    out = tmp_path / "m.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "pytal", "eval", "--gt", gt, "--pred", pred,
                           "--subset", "test", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "avg" in proc.stdout and json.loads(out.read_text())["tiou_thresholds"][0] == 0.3


def test_eval_never_imports_torch(files):
    """Evaluation needs numpy only: `pytal eval` starts in a fraction of a second, where
    importing torch alone takes seconds."""
    gt, pred = files
    code = ("import sys\nfrom pytal.cli import main\n"
            f"assert main(['eval', '--gt', {gt!r}, '--pred', {pred!r}, '--subset', 'test']) == 0\n"
            "assert 'torch' not in sys.modules, 'pytal eval imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_eval_gt_thresholds_follow_the_dataset(files, tmp_path):
    """Without --tiou: the preset of --dataset, else of the GT file's name, else THUMOS14's."""
    gt, pred = files
    anet_gt = tmp_path / "activitynet13.json"
    anet_gt.write_text(json.dumps(GT))
    runs = {"by_name": ["--gt", str(anet_gt)], "by_dataset": ["--gt", gt, "--dataset", "epic_100"],
            "default": ["--gt", gt]}
    got = {}
    for key, args in runs.items():
        out = tmp_path / f"{key}.json"
        assert main(["eval", *args, "--pred", pred, "--subset", "test", "--json", str(out)]) == 0
        got[key] = json.loads(out.read_text())["tiou_thresholds"]
    assert got["by_name"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert got["by_dataset"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert got["default"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert main(["eval", "--gt", gt, "--pred", pred, "--subset", "test", "--dataset", "x"]) == 1

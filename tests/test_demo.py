"""pytal demo in reduced mode: the run folder, and metrics that are those of its detections.

The reduced demo trains for one epoch on six videos and learns next to nothing (its mAP is
near 0), so the floor on what training reaches is in test_cli_train.py (same Trainer and
evaluation, on a learnable dataset); here every reported number is recomputed."""
from __future__ import annotations

import json
import warnings

import pytest
import yaml

from pytal.cli import main
from pytal.evaluation import evaluate


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-progress", "--output", str(out)]) == 0
    for name in ("metrics.json", "detections.json", "timeline.png", "config.yaml", "best.pt"):
        assert (out / name).is_file(), name
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and len(metrics["mAP"]) == 5
    printed = capsys.readouterr().out
    assert f"{100 * metrics['average_mAP']:>8.2f}" in printed.split(" avg")[-1].splitlines()[0]

    # the metrics are those of the detections written, on the test subset of the annotations
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    detections = json.loads((out / "detections.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # detections of classes absent from the subset
        recomputed = evaluate(cfg["dataset"]["annotation_file"], detections, subset="test",
                              tiou_thresholds=metrics["tiou_thresholds"])
    assert recomputed["mAP"] == pytest.approx(metrics["mAP"], abs=1e-12)
    assert json.loads((out / "demo.json").read_text())["metrics"] == metrics

    gt = json.loads(open(cfg["dataset"]["annotation_file"]).read())["database"]
    test_videos = {v for v, info in gt.items() if info["subset"] == "test"}
    assert set(detections["results"]) == test_videos and len(test_videos) == 6
    max_seg = cfg["eval"]["max_seg_num"]
    for vid, entries in detections["results"].items():
        assert 0 < len(entries) <= max_seg, vid
        scores = [e["score"] for e in entries]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] and scores[0] <= 1
        duration = float(gt[vid]["duration"])
        assert all(0 <= e["segment"][0] <= e["segment"][1] <= duration + 1e-6 for e in entries)


def test_demo_overrides_as_a_dict(tmp_path):
    """``run_demo(overrides=...)`` takes a plain dict (no "key=value" strings); its values land
    in the run's config.yaml over the demo's own."""
    from pytal.demo import run_demo

    out = tmp_path / "demo"
    result = run_demo(str(out), quick=True, progress=False,
                      overrides={"train.seed": 5, "eval": {"max_seg_num": 30},
                                 "model.regression_range": [[0, 4], [4, 16], [16, 10000]]})
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["seed"] == 5 and saved["eval"]["max_seg_num"] == 30
    assert saved["model"]["regression_range"] == [[0, 4], [4, 16], [16, 10000]]
    assert saved["train"]["epochs"] == 1 and saved["model"]["embd_dim"] == 16   # quick mode
    assert result["metrics"]["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    detections = json.loads((out / "detections.json").read_text())
    assert all(len(v) <= 30 for v in detections["results"].values())

"""pytal demo in reduced mode."""
from __future__ import annotations

import json

from pytal.cli import main


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-progress", "--output", str(out)]) == 0
    for name in ("metrics.json", "detections.json", "timeline.png", "config.yaml", "best.pt"):
        assert (out / name).is_file(), name
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and len(metrics["mAP"]) == 5
    assert "avg" in capsys.readouterr().out


def test_demo_overrides_as_a_dict(tmp_path):
    """``run_demo(overrides=...)`` takes a plain dict (no "key=value" strings); its values land
    in the run's config.yaml over the demo's own."""
    import yaml

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

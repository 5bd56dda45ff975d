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

"""Killed runs lose nothing: ``pytal train`` killed with SIGKILL in the middle of an epoch and
again in the middle of writing its checkpoint, then resumed, ends with the same weights,
metrics and history as a run that was never interrupted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pytal.data.synthetic import write_dataset
from pytal.engine.checkpoint import load_checkpoint

PAUSE_POINTS = os.path.join(os.path.dirname(__file__), "pause_points.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64"]
EPOCHS, STEPS_PER_EPOCH = 3, 2                      # 4 training videos, batch size 2


def _train_command(data, out, *extra: str) -> list[str]:
    overrides = [f"{k}={v}" for k, v in data.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  f"train.epochs={EPOCHS}", "train.warmup_epochs=1", "train.batch_size=2",
                  "train.model_ema=true", "train.ema_decay=0.9", "model.droppath=0.1",
                  "model.input_noise=0.1", "dataset.crop_ratio=[0.5,1.0]", "train.seed=3",
                  "train.checkpoint_every=1", "train.eval_every=1", *TINY]
    return [sys.executable, PAUSE_POINTS, "train", "cltdr_gmg_small", "--output", str(out),
            "--no-progress", "--threads", "1", *extra, "--override", *overrides]


def _run(command: list[str], pause: str = "", marker: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTAL_TEST_PAUSE": pause, "PYTAL_TEST_MARKER": marker}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _kill_at(command: list[str], pause: str, marker) -> None:
    """Run until the pause point, then SIGKILL."""
    process = _run(command, pause, str(marker))
    deadline = time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {pause}:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{pause} not reached in 300 s")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    marker.unlink()


def _finish(command: list[str]) -> None:
    process = _run(command)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output


def _checkpoint(path) -> dict:
    return load_checkpoint(path)


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


def test_killed_mid_epoch_and_mid_checkpoint_then_resumed_equals_uninterrupted(tmp_path):
    data = write_dataset(tmp_path / "data", num_videos=6, num_classes=3, feat_dim=16, seed=2,
                         duration_range=(12.0, 24.0), action_seconds=(1.0, 6.0))
    full, split, marker = tmp_path / "full", tmp_path / "split", tmp_path / "paused"
    _finish(_train_command(data, full))

    # In the middle of epoch 2 (its first step is done): last.pt holds epoch 1.
    _kill_at(_train_command(data, split), f"step:{STEPS_PER_EPOCH + 1}", marker)
    assert _checkpoint(split / "last.pt")["epoch"] == 1
    # Resumed, then killed with half of epoch 2's last.pt written: last.pt is still epoch 1's.
    _kill_at(_train_command(data, split, "--resume"), "checkpoint:1", marker)
    assert _checkpoint(split / "last.pt")["epoch"] == 1
    assert any(name.startswith(".tmp-") for name in os.listdir(split))   # the torn write
    _finish(_train_command(data, split, "--resume"))
    assert not any(name.startswith(".tmp-") for name in os.listdir(split))   # cleaned up
    assert "the partial write of a run that was killed" in (split / "train.log").read_text()

    want, got = _checkpoint(full / "last.pt"), _checkpoint(split / "last.pt")
    assert got["epoch"] == want["epoch"] == EPOCHS
    _assert_same_tensors(want["model"], got["model"], "model")
    _assert_same_tensors(want["ema"]["module"], got["ema"]["module"], "ema")
    _assert_same_tensors(_checkpoint(full / "best.pt")["model"],
                         _checkpoint(split / "best.pt")["model"], "best.pt")
    for name in ("metrics.json", "history.json", "detections.json"):
        assert json.loads((split / name).read_text()) == json.loads((full / name).read_text()), name

"""CLI tests on a tiny learnable synthetic dataset: train (with a floor on the mAP it reaches),
eval --ckpt, infer."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pytal.cli import main
from pytal.data.synthetic import write_dataset

TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64"]
EPOCHS = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    # learnable: 12 training videos, 10 epochs reach about 0.5 average mAP on the 4 others (a
    # model that learns nothing stays under 0.05)
    ds = write_dataset(root / "data", num_videos=16, num_classes=3, feat_dim=16, seed=1,
                       duration_range=(12.0, 20.0), action_seconds=(1.0, 5.0))
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  f"train.epochs={EPOCHS}", "train.warmup_epochs=1", "train.batch_size=2",
                  "train.lr=2e-3", *TINY]
    out = root / "run"
    threads = torch.get_num_threads()
    try:                                    # one thread: many small ops, a shared machine
        assert main(["train", "cltdr_gmg_small", "--output", str(out), "--no-progress",
                     "--threads", "1", "--override", *overrides]) == 0
    finally:
        torch.set_num_threads(threads)
    return ds, out


def test_train_writes_run_dir(run):
    _, out = run
    for name in ("config.yaml", "last.pt", "best.pt", "train.log", "metrics.json",
                 "detections.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == EPOCHS and "average_mAP" in metrics


def test_train_learns(run):
    _, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["average_mAP"] > 0.25, metrics["mAP"]
    assert metrics["mAP"][0] > 0.4, metrics["mAP"]                 # tIoU 0.3


def test_eval_ckpt(run, tmp_path, capsys):
    _, out = run
    assert main(["eval", "--ckpt", str(out / "best.pt"), "--json", str(tmp_path / "m.json")]) == 0
    assert "avg" in capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())
    assert json.loads((tmp_path / "m.json").read_text())["mAP"] == saved["mAP"]


def test_infer_folder_and_single_file_without_annotations(run, tmp_path):
    ds, out = run
    det = tmp_path / "det.json"
    assert main(["infer", "--ckpt", str(out / "best.pt"), "--features", ds.feature_dir,
                 "--out", str(det)]) == 0
    results = json.loads(det.read_text())["results"]
    assert set(results) == {v for vids in ds.subsets.values() for v in vids}

    lone = tmp_path / "lone.npy"                       # a video no annotation file knows
    np.save(lone, np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32))
    det2 = tmp_path / "det2.json"
    assert main(["infer", "--ckpt", str(out / "best.pt"), "--features", str(lone),
                 "--out", str(det2)]) == 0
    entries = json.loads(det2.read_text())["results"]["lone"]
    duration = (39 * 4 + 16) / 30.0                    # default_fps 30, stride 4, 16 frames
    assert all(0 <= e["segment"][0] <= e["segment"][1] <= duration + 1e-6 for e in entries)


def test_train_bad_override_is_a_user_error(tmp_path, capsys):
    assert main(["train", "cltdr_gmg_small", "--output", str(tmp_path),
                 "--override", "train.epoch=3"]) == 1
    assert "unknown key train.epoch" in capsys.readouterr().err


def test_config_help_lists_the_packaged_configs(monkeypatch, capsys):
    import pytal.config
    from pytal.cli import build_parser

    names = pytal.config.packaged_configs()
    assert {"cltdr_gmg_small", "seqattnet_small", "talmts_small"} <= set(names)
    monkeypatch.setattr(pytal.config, "packaged_configs", lambda: [*names, "zz_added_config"])
    for command in ("train", "infer"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(name in text for name in names) and "zz_added_config" in text, command

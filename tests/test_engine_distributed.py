"""Distributed training: sharding and merging of evaluation results (fast), and a real
two-process ``torchrun ... -m pytal train`` run with gloo (slow)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from pytal.config import config_from_dict
from pytal.data.synthetic import write_dataset
from pytal.engine import Trainer, load_checkpoint, load_model
from pytal.engine.distributed import (DistInfo, all_gather_objects, backend_for, barrier,
                                      broadcast_object, dist_info, init_distributed,
                                      merge_detections, shard_indices)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("count,world", [(0, 2), (1, 2), (5, 2), (6, 3), (7, 4), (3, 1)])
def test_shards_are_disjoint_cover_everything_and_balanced(count, world):
    shards = [shard_indices(count, r, world) for r in range(world)]
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(count))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_indices_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank=2 world_size=2"):
        shard_indices(5, 2, 2)


def _detections(video_ids):
    return {"version": "pytal-1", "external_data": {},
            "results": {v: [{"label": "a", "score": 0.5, "segment": [0.0, 1.0]}] for v in video_ids}}


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_merged_shards_equal_the_single_process_detections(world):
    videos = [f"v{i}" for i in range(7)]
    parts = [_detections([videos[i] for i in shard_indices(len(videos), r, world)])
             for r in range(world)]
    merged = merge_detections(parts)
    single = _detections(videos)
    assert merged == single
    assert list(merged["results"]) == list(single["results"])     # dataset order, too


def test_merge_rejects_a_video_in_two_shards():
    with pytest.raises(ValueError, match="'v1' in two shards"):
        merge_detections([_detections(["v1"]), _detections(["v1"])])


def test_single_process_helpers_without_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    info, device = init_distributed("cpu")
    assert info == DistInfo() and not info.distributed and device == torch.device("cpu")
    assert dist_info() == DistInfo()
    assert all_gather_objects({"a": 1}) == [{"a": 1}]
    assert broadcast_object(3) == 3
    barrier()
    assert backend_for("cpu") == "gloo" and backend_for("cuda:0") == "nccl"


def test_partial_torchrun_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(ValueError, match="LOCAL_RANK, WORLD_SIZE not set"):
        init_distributed("cpu")


TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64"]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "pytal", "train", *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    ds = write_dataset(tmp_path / "data", num_videos=6, num_classes=3, feat_dim=16, seed=1,
                       duration_range=(12.0, 20.0), action_seconds=(1.0, 5.0))
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "train.epochs=2", "train.warmup_epochs=0", "train.batch_size=2",
                  "train.eval_every=1", "train.model_ema=true", *TINY]
    run = tmp_path / "run"
    proc = _torchrun("cltdr_gmg_small", "--output", str(run), "--no-progress", "--threads", "1",
                     "--override", *overrides)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(run)) == ["best.pt", "config.yaml", "detections.json",
                                       "history.json", "last.pt", "metrics.json", "train.log"]
    assert proc.stdout.count("avg") == 1                         # rank 0 alone prints
    log = (run / "train.log").read_text()
    assert log.count("epoch 2/2:") == 1                          # rank 0 alone logs

    metrics = json.loads((run / "metrics.json").read_text())
    assert "average_mAP" in metrics and len(metrics["mAP"]) == 5
    detections = json.loads((run / "detections.json").read_text())["results"]
    assert set(detections) == set(ds.subsets["validation"])     # every rank's share gathered

    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and len(last["ranks"]) == 2
    assert not any(k.startswith("module.") for k in last["model"])
    model, cfg, _ = load_model(str(run / "best.pt"))            # a single-process model
    assert sum(p.numel() for p in model.parameters()) > 0
    single = Trainer(config_from_dict(last["config"], ["train.epochs=3"]), None, progress=False)
    single.fit(resume=str(run / "last.pt"))                      # DDP checkpoint, one process
    assert single.epoch == 3 and len(single.history) == 3

    # resume under torchrun (same number of processes: exact RNG continuation)
    proc = _torchrun("cltdr_gmg_small", "--output", str(run), "--no-progress", "--threads", "1",
                     "--resume", "--override", "train.epochs=3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "random streams continue differently" not in proc.stdout + proc.stderr
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert load_checkpoint(run / "last.pt")["epoch"] == 3

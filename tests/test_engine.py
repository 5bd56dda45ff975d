"""pytal.engine: exact resume, atomic checkpoints, detections JSON, schedule, settings."""
from __future__ import annotations

import json
import os

import pytest
import torch

from pytal.config import load_config
from pytal.data.synthetic import write_dataset
from pytal.engine import Trainer, WarmupCosine, atomic_save, infer_dataset, load_checkpoint

TINY_MODEL = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16",
              "model.head_num_layers=1", "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]",
              "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64",
              "model.num_bins=4"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_syn")
    return write_dataset(root, num_videos=6, num_classes=3, feat_dim=16, seed=0,
                         duration_range=(12.0, 24.0), action_seconds=(1.0, 6.0))


def tiny_config(ds, *extra: str) -> dict:
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "train.epochs=2", "train.warmup_epochs=1", "train.batch_size=2",
                  "train.model_ema=true", "train.ema_decay=0.9", "model.droppath=0.1",
                  "model.input_noise=0.1", "dataset.crop_ratio=[0.5,1.0]", "train.seed=7",
                  *TINY_MODEL, *extra]
    return load_config("cltdr_gmg_small", overrides)


def _assert_same_state(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: {k} differs"


def test_resume_equals_uninterrupted(tiny, tmp_path):
    cfg = tiny_config(tiny)
    full = Trainer(cfg, str(tmp_path / "full"), progress=False)
    full.fit()

    first = Trainer(cfg, str(tmp_path / "split"), progress=False)
    first.fit(stop_after=1)
    assert first.epoch == 1
    torch.manual_seed(12345)                       # disturb every RNG between the two halves
    second = Trainer(cfg, str(tmp_path / "split"), progress=False)
    second.fit(resume=str(tmp_path / "split" / "last.pt"))

    assert second.epoch == full.epoch == 2
    _assert_same_state(full.model.state_dict(), second.model.state_dict(), "model")
    _assert_same_state(full.ema.module.state_dict(), second.ema.module.state_dict(), "ema")
    assert full.model.loss_normalizer.value == second.model.loss_normalizer.value
    assert full.scheduler.state_dict()["last_epoch"] == second.scheduler.state_dict()["last_epoch"]
    for sa, sb in zip(full.optimizer.state_dict()["state"].values(),
                      second.optimizer.state_dict()["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    assert full.best["average_mAP"] == second.best["average_mAP"]

    run = tmp_path / "full"
    for name in ("last.pt", "best.pt", "metrics.json", "detections.json", "train.log"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and len(metrics["mAP"]) == 5
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["format"] == "pytal-checkpoint-1" and ckpt["config"]["model"]["name"] == "cltdr_gmg"


def test_atomic_save_failure_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_save({"x": torch.arange(3)}, path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.arange(5)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["x"], torch.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]          # no temporary file left

    with pytest.raises(OSError):
        monkeypatch.setattr(torch, "save", broken_save)
        atomic_save({"x": 1}, tmp_path / "new.pt")
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]          # a failed first write: no file


def test_detections_json_format(tiny):
    cfg = tiny_config(tiny)
    trainer = Trainer(cfg, None, progress=False)
    trainer.fit(stop_after=1)
    val = trainer.val_set
    out = infer_dataset(trainer.model, val, val.class_names)
    assert set(out) == {"version", "results", "external_data"}
    assert set(out["results"]) == set(val.video_ids)
    durations = {v.video_id: v.duration for v in val.videos}
    for vid, entries in out["results"].items():
        scores = [e["score"] for e in entries]
        assert scores == sorted(scores, reverse=True)
        for e in entries:
            assert set(e) == {"label", "score", "segment"}
            assert e["label"] in val.class_names
            s, t = e["segment"]
            assert 0.0 <= s <= t <= durations[vid] + 1e-6
    json.dumps(out)                                               # plain JSON types


def test_warmup_cosine():
    f = WarmupCosine(warmup=4, total=12, base_lr=1e-3, eta_min=1e-5)
    assert f(0) == 0.0 and f(2) == pytest.approx(0.5) and f(4) == pytest.approx(1.0)
    assert f(12) == pytest.approx(1e-2) and f(100) == pytest.approx(1e-2)
    assert all(f(i) >= f(i + 1) for i in range(4, 12))


@pytest.mark.parametrize("key,value,message", [
    ("epochs", 0, "train.epochs must be an integer >= 1"),
    ("lr", "fast", "train.lr must be a number"),
    ("model_ema", "yes", "train.model_ema must be true or false"),
    ("optimizer", "sgd", "train.optimizer must be one of adamw, adam"),
])
def test_train_settings_errors(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config("cltdr_gmg_small", {"train": {key: value}})

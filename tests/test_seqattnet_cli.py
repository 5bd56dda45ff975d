"""SeqAttNet through the CLI on tiny synthetic ActivityNet-style data (every video resized
to T steps): train, metrics with the proposal stage's AR@100 / AUC, eval --ckpt (with the
same proposal metrics), infer."""
from __future__ import annotations

import json

import pytest
import torch

from pytal.cli import main
from pytal.data.synthetic import write_dataset

TINY = ["model.base_dim=8", "model.num_samples=2", "model.hidden_3d=8", "model.hidden_2d=8",
        "model.max_duration=20", "model.amassment_length=20", "dataset.max_seq_len=20",
        "train.epochs=1", "train.batch_size=2", "train.num_workers=0",
        "dataset.file_prefix=null", "dataset.train_subset=training",
        "dataset.val_subset=validation"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("seqattnet_cli")
    ds = write_dataset(root / "data", num_videos=6, num_classes=3, feat_dim=16, seed=1,
                       duration_range=(12.0, 20.0), action_seconds=(2.0, 8.0))
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()] + TINY
    out = root / "run"
    try:
        assert main(["train", "seqattnet_small", "--output", str(out), "--no-progress",
                     "--override", *overrides]) == 0
    finally:
        torch.set_num_threads(threads)
    return ds, out


def test_train_writes_detection_and_proposal_metrics(run):
    ds, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and len(metrics["mAP"]) == 10      # 0.5:0.95
    assert 0.0 <= metrics["proposals"]["AR@100"] <= 1.0
    assert 0.0 <= metrics["proposals"]["AUC"] <= metrics["proposals"]["AR@100"] + 1e-9
    detections = json.loads((out / "detections.json").read_text())
    assert set(detections["proposals"]) == set(ds.subsets["validation"])
    assert all(len(p) <= 100 for p in detections["proposals"].values())


def test_eval_and_infer_from_the_checkpoint(run, tmp_path, capsys):
    ds, out = run
    result = tmp_path / "metrics.json"
    assert main(["eval", "--ckpt", str(out / "best.pt"), "--tiou", "activitynet",
                 "--json", str(result)]) == 0
    printed = capsys.readouterr().out
    # the same videos and weights as the training's evaluation: the same numbers
    trained = json.loads((out / "metrics.json").read_text())
    evaluated = json.loads(result.read_text())
    assert evaluated["proposals"] == pytest.approx(trained["proposals"])
    assert evaluated["average_mAP"] == pytest.approx(trained["average_mAP"])
    assert "avg" in printed
    assert f"proposals AR@100 (%): {100 * trained['proposals']['AR@100']:.2f}" in printed
    assert f"proposals AUC (%): {100 * trained['proposals']['AUC']:.2f}" in printed
    det = tmp_path / "det.json"
    assert main(["infer", "--ckpt", str(out / "best.pt"), "--features", ds.feature_dir,
                 "--out", str(det)]) == 0
    results = json.loads(det.read_text())
    assert set(results["results"]) == {v for vids in ds.subsets.values() for v in vids}
    for vid, dets in results["results"].items():
        duration = json.loads(open(ds.annotation_file).read())["database"][vid]["duration"]
        assert all(0 <= d["segment"][0] <= d["segment"][1] <= duration for d in dets)


def test_detections_json_carries_proposals_and_shards_merge_them():
    from pytal.engine import detections_json
    from pytal.engine.distributed import merge_detections

    def det(vid, with_proposals=True):
        d = {"video_id": vid, "segments": torch.tensor([[1.0, 2.0]]),
             "scores": torch.tensor([0.5]), "labels": torch.tensor([0])}
        if with_proposals:
            d.update(proposals=torch.tensor([[1.0, 3.0], [0.0, 1.0]]),
                     proposal_scores=torch.tensor([0.9, 0.2]))
        return d

    out = detections_json([det("a"), det("b")], ["x"])
    assert out["proposals"]["a"] == [{"score": pytest.approx(0.9), "segment": [1.0, 3.0]},
                                     {"score": pytest.approx(0.2), "segment": [0.0, 1.0]}]
    assert "proposals" not in detections_json([det("a", False)], ["x"])
    merged = merge_detections([detections_json([det("a")], ["x"]),
                               detections_json([det("b")], ["x"])])
    assert set(merged["proposals"]) == {"a", "b"} and set(merged["results"]) == {"a", "b"}

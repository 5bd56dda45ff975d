"""Class-agnostic detectors on multi-class files (``dataset.class_agnostic``): the training label
mapping, the class-count check, class-agnostic evaluation, and ``pytal train cltdr_gmg_anet``
on a tiny synthetic ActivityNet-layout dataset with and without external class scores."""
from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch

from pytal.cli import main
from pytal.config import load_config
from pytal.data.dataset import FeatureDataset
from pytal.data.synthetic import write_dataset
from pytal.engine import build_dataset
from pytal.evaluation import evaluate

TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64",
        "train.epochs=2", "train.warmup_epochs=1", "train.batch_size=2", "train.num_workers=0",
        "train.model_ema=false"]


@pytest.fixture(scope="module")
def anet(tmp_path_factory):
    """A few videos of each subset of the packaged ActivityNet layout (200 classes)."""
    layout = resources.files("pytal") / "resources" / "activitynet13.json.gz"
    return write_dataset(tmp_path_factory.mktemp("anet") / "data", layout=str(layout),
                         subsets=["training", "validation"], max_videos=4, feat_dim=16,
                         feat_stride=16, num_frames=16)


def _overrides(ds, *extra):
    data = {**ds.config_overrides(), "dataset.num_classes": 1, "dataset.file_prefix": "null"}
    return [f"{k}={v}" for k, v in data.items()] + TINY + list(extra)


def test_class_agnostic_dataset_maps_every_action_to_class_zero(anet):
    kwargs = dict(subset="training", feat_stride=anet.feat_stride, num_frames=anet.num_frames,
                  default_fps=anet.fps, input_dim=anet.feat_dim)
    multi = FeatureDataset(anet.annotation_file, anet.feature_dir, **kwargs)
    single = FeatureDataset(anet.annotation_file, anet.feature_dir, class_agnostic=True, **kwargs)
    assert single.class_names == multi.class_names and single.num_classes == 200
    assert single.num_target_classes == 1 and multi.num_target_classes == 200
    labels = torch.cat([multi[i]["labels"] for i in range(len(multi))])
    assert labels.numel() and int(labels.max()) > 0
    for i in range(len(single)):
        item, reference = single[i], multi[i]
        assert torch.equal(item["labels"], torch.zeros_like(reference["labels"]))
        assert torch.equal(item["segments"], reference["segments"])


def test_class_agnostic_needs_one_class():
    with pytest.raises(ValueError, match="dataset.num_classes"):
        load_config("cltdr_gmg_anet", ["dataset.num_classes=200"])


def test_class_count_mismatch_fails_early_naming_the_keys(anet):
    cfg = load_config("cltdr_gmg_anet", _overrides(anet, "dataset.class_agnostic=false"))
    with pytest.raises(ValueError, match="200 classes.*dataset.num_classes is 1.*"
                                         "dataset.class_agnostic"):
        build_dataset(cfg, "train")


def test_class_agnostic_evaluation_ignores_labels():
    gt = {"database": {"v": {"subset": "validation", "duration": 10.0, "annotations": [
        {"segment": [1.0, 3.0], "label": "a"}, {"segment": [5.0, 8.0], "label": "b"}]}}}
    pred = {"results": {"v": [{"label": "b", "score": 0.9, "segment": [1.0, 3.0]},
                              {"label": "a", "score": 0.8, "segment": [5.0, 8.0]}]}}
    per_class = evaluate(gt, pred, subset="validation", tiou_thresholds=[0.5])
    agnostic = evaluate(gt, pred, subset="validation", tiou_thresholds=[0.5],
                        class_agnostic=True)
    assert per_class["average_mAP"] == 0.0 and "class_agnostic" not in per_class
    assert agnostic["average_mAP"] == 1.0 and agnostic["class_agnostic"] is True
    assert list(agnostic["per_class_ap"]) == ["(any class)"]


def _train(out, overrides):
    threads = torch.get_num_threads()
    try:
        assert main(["train", "cltdr_gmg_anet", "--output", str(out), "--no-progress",
                     "--threads", "1", "--override", *overrides]) == 0
    finally:
        torch.set_num_threads(threads)
    return json.loads((out / "metrics.json").read_text())


def test_train_anet_without_class_scores_evaluates_class_agnostic(anet, tmp_path, capsys):
    metrics = _train(tmp_path / "run", _overrides(anet))
    assert metrics["class_agnostic"] is True and list(metrics["per_class_ap"]) == ["(any class)"]
    assert np.isfinite(metrics["average_mAP"])
    assert "class-agnostic" in (tmp_path / "run" / "train.log").read_text()
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())["results"]
    labels = {d["label"] for dets in detections.values() for d in dets}
    assert labels == {"(any class)"}
    assert main(["eval", "--ckpt", str(tmp_path / "run" / "best.pt"),
                 "--json", str(tmp_path / "m.json")]) == 0
    assert "class-agnostic" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["mAP"] == metrics["mAP"]


@pytest.mark.filterwarnings("ignore:.*whose label is not a ground-truth class")  # 2nd-best classes
def test_train_anet_with_class_scores_evaluates_per_class(anet, tmp_path):
    database = json.loads(open(anet.annotation_file).read())["database"]
    scores = {}                      # position i: label id i; each video's own classes first
    for video, entry in database.items():
        scores[video] = [0.01] * anet.num_classes
        for action in entry["annotations"]:
            scores[video][action["label_id"]] = 0.9
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"results": scores}))
    metrics = _train(tmp_path / "run", _overrides(anet, f"eval.ext_score_file={path}"))
    assert "class_agnostic" not in metrics and np.isfinite(metrics["average_mAP"])
    truth = {video: {a["label"] for a in entry["annotations"]}
             for video, entry in database.items() if entry["subset"] == "validation"}
    assert set(metrics["per_class_ap"]) == set().union(*truth.values())
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())["results"]
    assert set(detections) == set(truth)
    for video, dets in detections.items():
        labels = {d["label"] for d in dets}
        assert truth[video] <= labels and len(labels) <= max(2, len(truth[video])), video

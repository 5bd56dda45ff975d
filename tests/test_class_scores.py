"""External video-level class scores (``eval.ext_score_file``, pytal.engine.class_scores): the
file format, the combination with a detector's detections and its use by the engine."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from pytal.config import ConfigError, PACKAGE_DIR, config_from_dict, load_config
from pytal.data.synthetic import write_dataset
from pytal.engine import Trainer, VideoClassScores

import standin_detector  # noqa: F401  (registers model.name stand_in)

NAMES = ["A", "B", "C"]


def _dets(results):
    return {"version": "pytal-1", "results": results, "external_data": {}}


def _entry(score, start, label="A"):
    return {"label": label, "score": score, "segment": [start, start + 1.0]}


def test_top_classes_take_a_copy_of_the_detections_with_geometric_mean_scores():
    scores = VideoClassScores.read(
        {"results": {"v": [0.36, 0.1, 0.64]}, "class": ["C", "A", "B"]}, NAMES, topk=2,
        max_seg_num=200)
    out = scores.apply(_dets({"v": [_entry(0.81, 0.0), _entry(0.25, 2.0, "C"),
                                    _entry(0.04, 4.0)]}))
    got = [(d["label"], round(d["score"], 9), d["segment"][0]) for d in out["results"]["v"]]
    assert got == [("B", 0.72, 0.0), ("C", 0.54, 0.0), ("B", 0.4, 2.0), ("C", 0.3, 2.0),
                   ("B", 0.16, 4.0), ("C", 0.12, 4.0)]
    assert out["version"] == "pytal-1" and out["external_data"] == {}


def test_without_class_names_the_index_is_the_class_id_and_max_seg_num_applies_first():
    scores = VideoClassScores.read({"v": [0.2, 0.9, 0.5], "w": [1.0, 0.0, 0.0]}, NAMES,
                                   topk=1, max_seg_num=2)
    out = scores.apply(_dets({"v": [_entry(0.1, 0.0), _entry(0.4, 1.0), _entry(0.9, 2.0)],
                              "w": []}))
    assert [(d["label"], d["segment"][0]) for d in out["results"]["v"]] == [("B", 2.0),
                                                                             ("B", 1.0)]
    assert out["results"]["v"][0]["score"] == pytest.approx(math.sqrt(0.81))
    assert out["results"]["w"] == []


def test_the_file_is_read_from_disk(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"results": {"v": [0.0, 0.0, 1.0]}}))
    out = VideoClassScores.read(str(path), NAMES, topk=2, max_seg_num=5).apply(
        _dets({"v": [_entry(1.0, 0.0)]}))
    assert [d["label"] for d in out["results"]["v"]] == ["C", "A"]
    with pytest.raises(FileNotFoundError, match=r"eval\.ext_score_file.*missing\.json"):
        VideoClassScores.read(str(tmp_path / "missing.json"), NAMES, topk=2, max_seg_num=5)


@pytest.mark.parametrize("data, message", [
    ({"results": {"v": [0.1, 0.2]}}, r"results\['v'\]: expected a list of 3 finite numbers"),
    ({"results": {"v": [0.1, "0.2", 0.3]}}, r"results\['v'\]: expected a list of 3"),
    ({"results": {"v": [0.1, -0.2, 0.3]}}, r"results\['v'\]: expected a list of 3"),
    ({"results": {"v": [0.1, 0.2, 0.3]}, "class": ["A", "B", "Z"]}, r"'class' names \['Z'\]"),
    ({"results": {"v": [0.1, 0.2, 0.3]}, "class": ["A", "A", "B"]}, "distinct class names"),
    ({"results": {}}, "'results' must be a non-empty object"),
])
def test_bad_files_name_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        VideoClassScores.read(data, NAMES, topk=2, max_seg_num=5)


def test_a_video_missing_from_the_file_is_an_error():
    scores = VideoClassScores.read({"v": [0.2, 0.9, 0.5]}, NAMES, topk=1, max_seg_num=2)
    with pytest.raises(ValueError, match=r"no class scores for video 'x'"):
        scores.apply(_dets({"x": [_entry(0.5, 0.0)]}))


def test_config_keys():
    raw = {"model": {"name": "stand_in"}, "dataset": {"input_dim": 4, "num_classes": 1,
                                                      "name": "anet"},
           "eval": {"ext_score_file": "pytal:resources/x.json", "ext_score_topk": 3}}
    cfg = config_from_dict(raw)
    assert cfg.eval.ext_score_file == f"{PACKAGE_DIR}/resources/x.json"
    assert cfg.eval.ext_score_topk == 3
    raw["eval"]["ext_score_topk"] = 0
    with pytest.raises(ConfigError, match="eval.ext_score_topk"):
        config_from_dict(raw)


def test_trainer_evaluation_applies_the_file(tmp_path):
    ds = write_dataset(tmp_path / "data", num_videos=6, num_classes=3, feat_dim=8, seed=2,
                       duration_range=(12.0, 20.0), action_seconds=(1.0, 5.0))
    raw = {"model": {"name": "stand_in", "hidden": 8},
           "dataset": {"name": "thumos14_like", **{k.split(".")[1]: v
                                                   for k, v in ds.config_overrides().items()},
                       "train_subset": "training", "val_subset": "validation",
                       "max_seq_len": 64},
           "train": {"seed": 3}, "eval": {"max_seg_num": 20}}
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(raw))
    plain = Trainer(load_config(str(tmp_path / "plain.yaml")), None, progress=False)
    _, want = plain.evaluate()
    videos = sorted(want["results"])
    names = plain.val_set.class_names
    per_video = {v: [float(i == k % len(names)) * 0.5 + 0.25 for i in range(len(names))]
                 for k, v in enumerate(videos)}
    (tmp_path / "scores.json").write_text(json.dumps({"results": per_video}))
    raw["eval"].update(ext_score_file=str(tmp_path / "scores.json"), ext_score_topk=1)
    (tmp_path / "fused.yaml").write_text(yaml.safe_dump(raw))
    fused = Trainer(load_config(str(tmp_path / "fused.yaml")), None, progress=False)
    _, got = fused.evaluate()
    assert sum(len(e) for e in want["results"].values()) > 0
    for k, video in enumerate(videos):
        entries = got["results"][video]
        assert {d["label"] for d in entries} <= {names[k % len(names)]}
        expected = sorted(math.sqrt(d["score"] * 0.75) for d in want["results"][video])
        assert sorted(d["score"] for d in entries) == pytest.approx(expected)

"""pytal.io.json_tables: the compiled JSON walkers give exactly what the Python walkers give
(their specification) on real and tricky inputs, and hand everything else back to them."""
from __future__ import annotations

import json
import math
import os
import warnings
from collections import OrderedDict

import numpy as np
import pytest

from benchmarks.evaluation import random_predictions
from pytal.io import json_tables
from pytal.io.jsonio import read_json
from pytal.io.annotations import AnnotationError, load_instances
from pytal.evaluation import detection, evaluate

ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "pytal", "resources")

pytestmark = pytest.mark.skipif(
    not json_tables.built(),
    reason=f"pytal._tables is not built ({json_tables.LOAD_ERROR}); .ci/run requires it")


def _load(name: str) -> dict:
    return read_json(os.path.join(ANNOTATIONS, name))[0]


def _instances(database: dict, subset: str, compiled: bool):
    with json_tables.use_compiled(compiled):
        return load_instances({"database": database}, subset)


def _assert_same_instances(a, b):
    assert a.video_ids == b.video_ids and a.labels == b.labels
    assert a.video.dtype == b.video.dtype == np.int64
    assert a.segments.dtype == b.segments.dtype == np.float64
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.segments, b.segments)
    assert a.segments.shape == (len(a.labels), 2)


@pytest.mark.parametrize("name", ["thumos14.json", "activitynet13.json.gz"])
def test_instance_table_matches_the_python_walker_on_the_real_files(name):
    database = _load(name)["database"]
    for subset in sorted({v["subset"] for v in database.values()}):
        assert json_tables.instance_table(database, subset) is not None  # the fast path ran
        _assert_same_instances(_instances(database, subset, True),
                               _instances(database, subset, False))


def test_instance_table_multi_label_rows():
    database = {"a": {"subset": "s", "annotations": [
        {"segment": [1, 2], "label": ["x", "y"], "label_id": [4, 0]},
        {"segment": [0, 5], "label": "z", "label_id": [2]},
        {"segment": [3, 4.5], "label": ["y"]},
        {"segment": [3, 4.5], "label": ["x", "z"], "label_id": None}]}}
    video_ids, video, segments, labels = json_tables.instance_table(database, "s")
    assert video_ids == ["a"] and labels == ["x", "y", "z", "y", "x", "z"]
    assert video.tolist() == [0] * 6
    assert segments.tolist() == [[1, 2], [1, 2], [0, 5], [3, 4.5], [3, 4.5], [3, 4.5]]
    _assert_same_instances(_instances(database, "s", True), _instances(database, "s", False))


def test_instance_table_numbers_and_empty_videos():
    database = {"a": {"subset": "s", "annotations": [{"segment": [1, 2.5], "label": "x"},
                                                    {"segment": [-3, -3], "label": "y",
                                                     "label_id": 7}]},
                "b": {"subset": "s"},                      # no annotations field
                "c": {"subset": "t", "annotations": "ignored: other subset"},
                "d": {"subset": "s", "annotations": [{"segment": [0.0, 2 ** 53],
                                                      "label": "x", "label_id": None}]}}
    video_ids, video, segments, labels = json_tables.instance_table(database, "s")
    assert video_ids == ["a", "b", "d"] and labels == ["x", "y", "x"]
    assert video.tolist() == [0, 0, 2] and video.flags.writeable
    assert segments.tolist() == [[1.0, 2.5], [-3.0, -3.0], [0.0, 2.0 ** 53]]
    _assert_same_instances(_instances(database, "s", True), _instances(database, "s", False))


@pytest.mark.parametrize("annotation", [
    {"segment": (1, 2), "label": "x"},                      # tuple
    {"segment": [1, 2], "label": ("x", "y")},
    {"segment": [1, 2], "label": ["x", "y"], "label_id": (0, 1)},
    {"segment": [np.float64(1), 2], "label": "x"},          # numpy scalar
    {"segment": [1, 2 ** 60], "label": "x"},                # int beyond exact doubles
    OrderedDict(segment=[1, 2], label="x"),                 # dict subclass
])
def test_instance_table_hands_unusual_annotations_to_the_python_walker(annotation):
    database = {"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "x"},
                                                    annotation]}}
    assert json_tables.instance_table(database, "s") is None
    table = load_instances({"database": database}, "s")
    assert table.labels[0] == "x" and len(table.labels) >= 2


@pytest.mark.parametrize("database,subset,message", [
    ({"a": {"subset": "s", "annotations": [{"segment": [2, 1], "label": "x"}]}}, "s",
     "video 'a', annotation 0: field 'segment' must have end >= start"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, math.inf], "label": "x"}]}}, "s",
     "two finite numbers"),
    ({"a": {"subset": "s", "annotations": [{"segment": [True, 1], "label": "x"}]}}, "s",
     "two finite numbers"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1]}]}}, "s", "field 'label'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "x",
                                            "label_id": True}]}}, "s", "field 'label_id'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": []}]}}, "s",
     "field 'label'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": ["x", 3]}]}}, "s",
     "field 'label'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": ["x", "y"],
                                            "label_id": 3}]}}, "s", "field 'label_id'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": ["x", "y"],
                                            "label_id": [3]}]}}, "s", "field 'label_id'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": ["x", "y"],
                                            "label_id": [3, -1]}]}}, "s", "field 'label_id'"),
    ({"a": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "x",
                                            "label_id": -1}]}}, "s", "field 'label_id'"),
    ({"a": {"subset": "s", "annotations": {"segment": [0, 1]}}}, "s",
     "field 'annotations' must be a list"),
    ({"a": {"subset": "s"}, "b": {"annotations": []}}, "s", "video 'b': field 'subset'"),
    ({"a": {"subset": "s"}, "b": ["not", "a", "dict"]}, "s", "video 'b': field 'subset'"),
    ({"a": {"subset": "s"}}, "t", "unknown subset 't'; known subsets: \\['s'\\]"),
])
def test_instance_table_errors_are_the_python_walkers(database, subset, message):
    assert json_tables.instance_table(database, subset) is None
    for compiled in (True, False):
        with pytest.raises(AnnotationError, match=message):
            _instances(database, subset, compiled)


def _ground_truth(database: dict, subset: str):
    with json_tables.use_compiled(False):
        return detection._GroundTruth({"database": database}, subset)


def _predictions(results: dict, gt, compiled: bool, unknown_videos="false_positive"):
    with json_tables.use_compiled(compiled):
        return detection._Predictions({"results": results}, gt, unknown_videos)


def _assert_same_predictions(a, b):
    for name in ("video", "label", "score", "segments"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_detection_table_matches_the_python_walker_on_activitynet():
    ground_truth = _load("activitynet13.json.gz")
    gt = _ground_truth(ground_truth["database"], "validation")
    results = random_predictions(ground_truth, subset="validation", num_predictions=20_000,
                                 seed=3, outside_videos=30)["results"]
    results["empty"] = []
    # other labels and ints among the numbers
    first = next(iter(results.values()))
    first.append({"label": "not a class", "score": 1, "segment": [3, 4.5]})
    assert json_tables.detection_table(results, gt.label_index, gt.video_index) is not None
    with pytest.warns(UserWarning):
        compiled = _predictions(results, gt, True)
    with pytest.warns(UserWarning):
        python = _predictions(results, gt, False)
    _assert_same_predictions(compiled, python)
    assert compiled.video.flags.writeable and compiled.segments.flags.c_contiguous


def test_detection_table_values_in_file_order():
    gt = _ground_truth({"v1": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "A"}]},
                        "v2": {"subset": "s"}}, "s")
    results = {"v2": [{"label": "A", "score": 0.5, "segment": [1.5, 2]}],
               "elsewhere": [{"label": "B", "score": 2, "segment": [-1, 3]}],
               "v1": [{"label": "A", "score": 0.25, "segment": [0, 1], "extra": None}]}
    video, label, score, segments = json_tables.detection_table(results, gt.label_index,
                                                                gt.video_index)
    assert video.tolist() == [1, -1, 0] and label.tolist() == [0, -1, 0]
    assert score.tolist() == [0.5, 2.0, 0.25]
    assert segments.tolist() == [[1.5, 2.0], [-1.0, 3.0], [0.0, 1.0]]
    empty = json_tables.detection_table({}, gt.label_index, gt.video_index)
    assert [a.shape for a in empty] == [(0,), (0,), (0,), (0, 2)]


@pytest.mark.parametrize("detection", [
    {"label": "A", "score": np.float32(0.5), "segment": [0, 1]},     # numpy scalar score
    {"label": "A", "score": True, "segment": [0, 1]},                # bool score
    {"label": "A", "score": 2 ** 60, "segment": [0, 1]},             # int beyond exact doubles
    {"label": "A", "score": 0.5, "segment": (0, 1)},                 # tuple segment
    {"label": "A", "score": 0.5, "segment": np.array([0.0, 1.0])},
    {"label": 3, "score": 0.5, "segment": [0, 1]},                   # not a str label
    OrderedDict(label="A", score=0.5, segment=[0, 1]),
])
def test_detection_table_hands_unusual_detections_to_the_python_walker(detection):
    gt = _ground_truth({"v1": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "A"}]}},
                       "s")
    results = {"v1": [{"label": "A", "score": 0.9, "segment": [0, 1]}, detection]}
    assert json_tables.detection_table(results, gt.label_index, gt.video_index) is None
    unknown_label = detection["label"] != "A"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = _predictions(results, gt, True)
    assert len(caught) == unknown_label and len(pred.score) == 2 - unknown_label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_same_predictions(pred, _predictions(results, gt, False))


@pytest.mark.parametrize("dets,message", [
    ([{"label": "A", "score": 1}], "'label', 'score' and 'segment'"),
    ([{"label": "A", "score": "high", "segment": [0, 1]}], "numeric 'score'"),
    ([{"label": "A", "score": "1.5", "segment": [0, 1]}], "a score value is str '1.5'"),
    ([{"label": "A", "score": None, "segment": [0, 1]}], "a score value is NoneType None"),
    ([{"label": "A", "score": 1.0, "segment": [0, "2"]}], "a segment value is str '2'"),
    ([{"label": "A", "score": 1.0, "segment": [b"0", 1]}], "a segment value is bytes"),
    ([{"label": "A", "score": 1, "segment": [0, 1, 2]}], "'segment' \\[start, end\\]"),
    ([{"label": "A", "score": math.nan, "segment": [0, 1]}], "finite"),
    ([{"label": "A", "score": 1.0, "segment": [0, math.inf]}], "finite"),
    ([["A", 1, [0, 1]]], "'label', 'score' and 'segment'"),
])
def test_detection_errors_are_the_same_with_either_walker(dets, message):
    gt = _ground_truth({"v1": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "A"}]}},
                       "s")
    for compiled in (True, False):
        with pytest.raises(ValueError, match=message):
            _predictions({"v1": dets}, gt, compiled)


def test_the_compiled_walker_hands_numeric_strings_to_the_python_walker():
    gt = _ground_truth({"v1": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "A"}]}},
                       "s")
    for det in ({"label": "A", "score": "0.5", "segment": [0, 1]},
                {"label": "A", "score": 0.5, "segment": ["0", 1]}):
        assert json_tables.detection_table({"v1": [det]}, gt.label_index, gt.video_index) is None


def test_evaluate_gives_identical_results_with_either_walker():
    ground_truth = _load("thumos14.json")
    predictions = random_predictions(ground_truth, subset="test", num_predictions=3000, seed=1)
    results = []
    for compiled in (True, False):
        with json_tables.use_compiled(compiled):
            results.append(evaluate(ground_truth, predictions, subset="test",
                                    tiou_thresholds="thumos14"))
    assert results[0] == results[1]


def test_use_compiled_is_restored_on_error():
    assert json_tables.available()
    with pytest.raises(RuntimeError):
        with json_tables.use_compiled(False):
            assert not json_tables.available()
            raise RuntimeError
    assert json_tables.available()

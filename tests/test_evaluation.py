"""pytal.evaluation: hand-computed cases, the official protocol's corner cases, and agreement
with the per-prediction loop of benchmarks/evaluation.py on the real THUMOS14 annotations.

Every test runs twice: with the compiled JSON walkers of pytal._tables and with the Python ones
(:mod:`pytal.io.json_tables`)."""
from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import pytest

from benchmarks.evaluation import random_predictions, reference_evaluate
from pytal.io import json_tables
from pytal.io.jsonio import read_json
from pytal.evaluation import (ACTIVITYNET_TIOU, THUMOS14_TIOU, evaluate,
                              interpolated_average_precision, match_detections,
                              parse_tiou_thresholds, segment_iou, tiou_range)

ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "pytal", "resources")
THUMOS = os.path.join(ANNOTATIONS, "thumos14.json")
ANET = os.path.join(ANNOTATIONS, "activitynet13.json.gz")


@pytest.fixture(autouse=True, params=["compiled walkers", "python walkers"])
def walkers(request):
    compiled = request.param == "compiled walkers"
    if compiled and not json_tables.built():
        pytest.skip(f"pytal._tables is not built ({json_tables.LOAD_ERROR})")
    with json_tables.use_compiled(compiled):
        yield


def gt_file(videos: dict) -> dict:
    """{video: [(start, end, label), ...]} -> ground truth of subset 'test'."""
    return {"version": "t", "taxonomy": [], "database": {
        v: {"subset": "test", "duration": 100.0,
            "annotations": [{"segment": [s, e], "label": label} for s, e, label in anns]}
        for v, anns in videos.items()}}


def submission(dets: list) -> dict:
    """[(video, start, end, label, score), ...] in file order -> submission dict."""
    results: dict = {}
    for v, s, e, label, score in dets:
        results.setdefault(v, []).append({"label": label, "score": score, "segment": [s, e]})
    return {"version": "t", "results": results, "external_data": {}}


def ap_of(gt, dets, label="A", tiou=(0.5,), **kwargs):
    return evaluate(gt, submission(dets), subset="test", tiou_thresholds=list(tiou),
                    **kwargs)["per_class_ap"][label]


def test_hand_computed_ap_and_class_without_predictions():
    gt = gt_file({"v1": [(0, 10, "A"), (20, 30, "A"), (40, 50, "B")]})
    dets = [("v1", 0, 10, "A", 0.9), ("v1", 50, 60, "A", 0.8), ("v1", 21, 30, "A", 0.7)]
    result = evaluate(gt, submission(dets), subset="test", tiou_thresholds=[0.5, 0.95])
    # 0.5: TP, FP, TP -> precision 1 at recall 0.5 and 2/3 at recall 1.
    # 0.95: the third detection has tIoU 0.9 -> only the first TP.
    assert result["per_class_ap"]["A"] == pytest.approx([0.5 + 0.5 * 2 / 3, 0.5], abs=1e-12)
    assert result["per_class_ap"]["B"] == [0.0, 0.0]                     # no predictions
    assert result["mAP"] == pytest.approx([(0.5 + 1 / 3) / 2, 0.25], abs=1e-12)
    assert result["average_mAP"] == pytest.approx(np.mean(result["mAP"]), abs=1e-15)
    assert result["tiou_thresholds"] == [0.5, 0.95]
    assert set(result) == {"tiou_thresholds", "mAP", "average_mAP", "per_class_ap"}


def test_precision_envelope_uses_later_higher_precision():
    gt = gt_file({"v1": [(0, 10, "A"), (20, 30, "A"), (40, 50, "A")]})
    # TP, FP, FP, TP, TP: precisions at the TPs 1, 2/4, 3/5 -> envelope 1, 3/5, 3/5.
    dets = [("v1", 0, 10, "A", 0.9), ("v1", 60, 61, "A", 0.8), ("v1", 70, 71, "A", 0.7),
            ("v1", 20, 30, "A", 0.6), ("v1", 40, 50, "A", 0.5)]
    assert ap_of(gt, dets) == pytest.approx([(1 + 0.6 + 0.6) / 3], abs=1e-12)


def test_score_ties_follow_file_order():
    gt = gt_file({"v1": [(0, 10, "A")]})
    fp, tp = ("v1", 50, 60, "A", 0.5), ("v1", 0, 10, "A", 0.5)
    assert ap_of(gt, [fp, tp]) == [0.5]           # the false positive is ranked first
    assert ap_of(gt, [tp, fp]) == [1.0]


def test_duplicate_predictions_match_once():
    gt = gt_file({"v1": [(0, 10, "A"), (20, 30, "A")]})
    dets = [("v1", 0, 10, "A", 0.9), ("v1", 0, 10, "A", 0.8), ("v1", 20, 30, "A", 0.7)]
    assert ap_of(gt, dets) == pytest.approx([0.5 + 0.5 * 2 / 3], abs=1e-12)


def test_match_prefers_highest_tiou_among_unmatched():
    gt = gt_file({"v1": [(0, 10, "A"), (8, 20, "A")]})
    # The first detection overlaps both and takes the better one (tIoU 10/12 vs 4/20); the
    # second then finds its best (tIoU 0.9) taken and the other below 0.5: false positive.
    dets = [("v1", 0, 12, "A", 0.9), ("v1", 1, 10, "A", 0.8)]
    assert ap_of(gt, dets) == pytest.approx([0.5])
    # At 0.1 the second one takes the remaining instance (tIoU 2/19 >= 0.1).
    assert ap_of(gt, dets, tiou=(0.1,)) == pytest.approx([1.0])


def test_videos_outside_the_subset_are_false_positives_like_the_official_code():
    gt = gt_file({"v1": [(0, 10, "A")]})
    dets = [("elsewhere", 0, 10, "A", 0.9), ("v1", 0, 10, "A", 0.8)]
    with pytest.warns(UserWarning, match="1 detections of 1 videos not in the subset are counted"):
        assert ap_of(gt, dets) == [0.5]
    with pytest.warns(UserWarning, match="ignored"):
        assert ap_of(gt, dets, unknown_videos="ignore") == [1.0]


def test_subset_videos_without_annotations_and_other_labels():
    gt = gt_file({"v1": [(0, 10, "A")], "empty": []})
    dets = [("empty", 0, 10, "A", 0.9), ("v1", 0, 10, "A", 0.8), ("v1", 0, 10, "Z", 0.95)]
    with pytest.warns(UserWarning, match="not a ground-truth class.*'Z'"):
        # 'empty' is in the subset: its detection stays a false positive even with "ignore".
        assert ap_of(gt, dets, unknown_videos="ignore") == [0.5]


def test_empty_prediction_file():
    gt = gt_file({"v1": [(0, 10, "A"), (5, 8, "B")]})
    result = evaluate(gt, {"results": {}}, subset="test", tiou_thresholds="thumos14")
    assert result["mAP"] == [0.0] * 5 and result["average_mAP"] == 0.0
    assert result["per_class_ap"] == {"A": [0.0] * 5, "B": [0.0] * 5}


def test_paths_and_dicts_give_the_same_result(tmp_path):
    gt = gt_file({"v1": [(0, 10, "A"), (20, 30, "A")]})
    sub = submission([("v1", 1, 10, "A", 0.9), ("v1", 19, 30, "A", 0.3)])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(sub))
    from_paths = evaluate(str(tmp_path / "gt.json"), tmp_path / "pred.json", subset="test",
                          tiou_thresholds="0.3:0.7:0.1")
    assert from_paths == evaluate(gt, sub, subset="test", tiou_thresholds=THUMOS14_TIOU)


@pytest.mark.parametrize("subset,count,outside", [("test", 4000, 20), ("validation", 2500, 0)])
def test_agrees_with_per_prediction_loop_on_thumos14(subset, count, outside):
    gt, _ = read_json(THUMOS)
    preds = random_predictions(gt, subset=subset, num_predictions=count, seed=3,
                               outside_videos=outside)
    thresholds = tiou_range(0.1, 0.9, 0.1)
    with pytest.warns(UserWarning) if outside else contextlib.nullcontext():
        fast = evaluate(gt, preds, subset=subset, tiou_thresholds=thresholds)
    slow = reference_evaluate(gt, preds, subset=subset, tiou_thresholds=thresholds)
    np.testing.assert_allclose(fast["mAP"], slow["mAP"], rtol=0, atol=1e-12)
    assert fast["per_class_ap"].keys() == slow["per_class_ap"].keys()
    for label, aps in slow["per_class_ap"].items():
        np.testing.assert_allclose(fast["per_class_ap"][label], aps, rtol=0, atol=1e-12)
    assert 0.05 < fast["average_mAP"] < 0.95                   # a non-degenerate case


def test_agrees_with_per_prediction_loop_on_activitynet_sample():
    gt, _ = read_json(ANET)
    preds = random_predictions(gt, subset="validation", num_predictions=3000, seed=7)
    fast = evaluate(gt, preds, subset="validation", tiou_thresholds="activitynet")
    slow = reference_evaluate(gt, preds, subset="validation", tiou_thresholds=ACTIVITYNET_TIOU)
    np.testing.assert_allclose(fast["mAP"], slow["mAP"], rtol=0, atol=1e-12)


def test_interpolated_ap_matches_direct_formula():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, npos = int(rng.integers(1, 40)), int(rng.integers(1, 30))
        tp = rng.random((3, n)) < 0.4
        tp[:, np.cumsum(tp, axis=1)[0] > npos] = False
        expected = []
        for row in tp:
            cum = np.cumsum(row)
            prec = [0.0, *(cum / np.arange(1, n + 1)), 0.0]
            rec = [0.0, *(cum / npos), 1.0]
            for i in range(len(prec) - 2, -1, -1):
                prec[i] = max(prec[i], prec[i + 1])
            expected.append(sum((rec[i] - rec[i - 1]) * prec[i] for i in range(1, len(rec))))
        np.testing.assert_allclose(interpolated_average_precision(tp, npos), expected, atol=1e-12)
    assert interpolated_average_precision(np.zeros((2, 0), bool), 3).tolist() == [0.0, 0.0]


def test_match_detections_and_segment_iou_directly():
    iou = segment_iou(np.array([[0.0, 10.0], [5.0, 5.0]]), np.array([[5.0, 15.0], [5.0, 5.0]]))
    assert iou.tolist() == [pytest.approx(1 / 3), 0.0]          # empty union -> 0
    tp = match_detections(np.array([0, 0, -1, 1]), np.array([[0, 10], [0, 10], [0, 10], [0, 10.]]),
                          np.array([0, 1]), np.array([[0, 10], [50, 60.]]), np.array([0.5]))
    assert tp.tolist() == [[True, False, False, False]]


def _greedy_match_loop(pred_group, pred_segments, gt_group, gt_segments, thresholds):
    """match_detections written out: per threshold, per detection, per instance."""
    tp = np.zeros((len(thresholds), len(pred_group)), bool)
    for t, threshold in enumerate(thresholds):
        locked = set()
        for i, (group, segment) in enumerate(zip(pred_group, pred_segments)):
            best, best_iou = None, -1.0
            for j, (g, gt) in enumerate(zip(gt_group, gt_segments)):
                if g == group and j not in locked:
                    iou = float(segment_iou(segment, gt))
                    if iou > best_iou:
                        best, best_iou = j, iou
            if best is not None and best_iou >= threshold:
                locked.add(best)
                tp[t, i] = True
    return tp


@pytest.mark.parametrize("seed", range(6))
def test_match_detections_agrees_with_a_plain_loop(seed, monkeypatch):
    """Crowded groups, exact tIoU ties (integer segments), thresholds equal to tIoUs, unsorted
    and more than 64 thresholds (matched 64 at a time); group lookup by table and by search;
    candidate instances by start window and whole groups."""
    from pytal.evaluation import matching
    if seed >= 3:
        monkeypatch.setattr(matching, "LOOKUP_LIMIT", 0)
    monkeypatch.setattr(matching, "WINDOW_MIN_PAIRS", (0, 1000)[seed % 2])     # both paths
    rng = np.random.default_rng(seed)
    num_gt, num_pred = int(rng.integers(1, 30)), int(rng.integers(0, 80))
    gt_group = rng.integers(0, 4, num_gt)
    start = rng.integers(0, 20, num_gt)
    gt_segments = np.stack([start, start + rng.integers(0, 8, num_gt)], 1).astype(float)
    pred_group = np.sort(rng.integers(-1, 5, num_pred))      # any order of groups works
    start = rng.integers(0, 20, num_pred)
    pred_segments = np.stack([start, start + rng.integers(1, 8, num_pred)], 1).astype(float)
    if seed % 2:
        thresholds = rng.permutation(np.r_[np.linspace(0.01, 1.0, 70), 0.5, 1 / 3, 0.25])
    else:
        thresholds = np.array([0.7, 0.1, 0.5, 0.3])
    expected = _greedy_match_loop(pred_group, pred_segments, gt_group, gt_segments, thresholds)
    got = match_detections(pred_group, pred_segments, gt_group, gt_segments, thresholds)
    assert got.dtype == bool and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    rows, cols = matching.true_positives(pred_group, pred_segments, gt_group, gt_segments,
                                         thresholds)
    np.testing.assert_array_equal(np.stack([rows, cols]), np.stack(np.nonzero(expected)))


@pytest.mark.parametrize("limit", [0, 1 << 23])
def test_group_rows(limit, monkeypatch):
    from pytal.evaluation import matching
    monkeypatch.setattr(matching, "LOOKUP_LIMIT", limit)
    rows = matching.group_rows(np.array([2, 5, 9]), np.array([-1, 0, 2, 3, 5, 9, 10, 1000]))
    assert rows.tolist() == [-1, -1, 0, -1, 1, 2, -1, -1]


def test_ranking_is_a_stable_sort_by_class_then_score():
    from pytal.evaluation.detection import ranking
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, 500)
    ties = rng.integers(0, 4, 500) / 4.0
    for score in (rng.random(500), ties, np.r_[-0.0, 0.0, rng.random(498)]):
        np.testing.assert_array_equal(ranking(label, score), np.lexsort((-score, label)))
    assert ranking(np.zeros(0, np.int64), np.zeros(0)).tolist() == []
    big = np.array([40000, 3, 40000])                       # labels beyond int16
    np.testing.assert_array_equal(ranking(big, np.array([0.1, 0.2, 0.3])), [1, 2, 0])


def test_malformed_detections_name_the_field():
    gt = gt_file({"v1": [(0, 10, "A")]})
    cases = [([["A", 1, [0, 1]]], "'label', 'score' and 'segment'"),
             ([{"label": ["A"], "score": 1, "segment": [0, 1]}], "'label' must be a class name"),
             ([{"label": "A", "score": "high", "segment": [0, 1]}], "numeric 'score'"),
             ([{"label": "A", "score": 1, "segment": [0, None]}], "a segment value is NoneType"),
             ([{"label": "A", "score": "1.5", "segment": [0, 1]}], "a score value is str '1.5'"),
             ([{"label": "A", "score": 1, "segment": 5}], "'segment' \\[start, end\\]")]
    with pytest.raises(ValueError, match="results\\['v1'\\] must be a list of detections"):
        evaluate(gt, {"results": {"v0": [], "v1": {"label": "A"}}}, subset="test",
                 tiou_thresholds=[0.5])

    class Detections(list):
        pass

    one = Detections([{"label": "A", "score": 1.0, "segment": [0, 10]}])
    result = evaluate(gt, {"results": {"v1": one}}, subset="test", tiou_thresholds=[0.5])
    assert result["mAP"] == [1.0]
    for dets, message in cases:
        with pytest.raises(ValueError, match=message):
            evaluate(gt, {"results": {"v1": dets}}, subset="test", tiou_thresholds=[0.5])


def test_other_subsets_are_not_validated_but_every_video_needs_a_subset():
    gt = gt_file({"v1": [(0, 10, "A")]})
    sub = submission([("v1", 0, 10, "A", 0.9)])
    gt["database"]["elsewhere"] = {"subset": "train", "annotations": [{"segment": [5, 1]}]}
    assert evaluate(gt, sub, subset="test", tiou_thresholds=[0.5])["mAP"] == [1.0]
    with pytest.raises(ValueError, match="video 'elsewhere', annotation 0: field 'segment'"):
        evaluate(gt, sub, subset="train", tiou_thresholds=[0.5])
    gt["database"]["lost"] = {"annotations": []}
    with pytest.raises(ValueError, match="video 'lost': field 'subset' must be a string"):
        evaluate(gt, sub, subset="test", tiou_thresholds=[0.5])


def test_threshold_specs():
    assert parse_tiou_thresholds("0.3:0.7:0.1") == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert parse_tiou_thresholds("thumos14") == list(THUMOS14_TIOU)
    assert parse_tiou_thresholds("activitynet") == parse_tiou_thresholds("0.5:0.95:0.05")
    assert parse_tiou_thresholds("0.5, 0.75") == [0.5, 0.75]
    assert parse_tiou_thresholds(0.5) == [0.5]
    for bad in ("0.3:0.7", "abc", "0:0.5:0.1", [1.5], "0.5:0.3:0.1"):
        with pytest.raises(ValueError):
            parse_tiou_thresholds(bad)


def test_input_errors_name_the_problem():
    gt = gt_file({"v1": [(0, 10, "A")]})
    with pytest.raises(ValueError, match="unknown subset 'val'.*known subsets: \\['test'\\]"):
        evaluate(gt, {"results": {}}, subset="val", tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="'results'"):
        evaluate(gt, {"version": 1}, subset="test", tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="'label', 'score' and 'segment'"):
        evaluate(gt, {"results": {"v1": [{"label": "A", "score": 1}]}}, subset="test",
                 tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="finite"):
        evaluate(gt, submission([("v1", 0, 1, "A", float("nan"))]), subset="test",
                 tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="segment"):
        evaluate(gt, {"results": {"v1": [{"label": "A", "score": 1, "segment": [1, 2, 3]}]}},
                 subset="test", tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="unknown_videos"):
        evaluate(gt, {"results": {}}, subset="test", tiou_thresholds=[0.5], unknown_videos="x")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        evaluate("nope.json", {"results": {}}, subset="test", tiou_thresholds=[0.5])
    with pytest.raises(ValueError, match="'database'"):
        evaluate({"taxonomy": []}, {"results": {}}, subset="test", tiou_thresholds=[0.5])

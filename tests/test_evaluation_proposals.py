"""Proposal evaluation: AR-AN curve, AR@AN and AUC against hand-computed cases."""
import numpy as np
import pytest

from pytal.evaluation import evaluate_proposals


def _gt(videos):
    return {"database": {vid: {"subset": "val", "duration": 100.0,
                               "annotations": [{"segment": list(s), "label": "a"} for s in segs]}
                         for vid, segs in videos.items()}}


def _props(videos):
    return {"results": {vid: [{"segment": list(s), "score": sc} for s, sc in props]
                        for vid, props in videos.items()}}


def test_one_proposal_per_instance_hits_at_its_rank():
    gt = _gt({"a": [(0, 10)], "b": [(20, 30)]})
    # a: a perfect proposal ranked 1st; b: ranked 2nd behind a miss
    props = _props({"a": [((0, 10), 0.9), ((50, 60), 0.1)],
                    "b": [((70, 80), 0.8), ((20, 30), 0.7)]})
    out = evaluate_proposals(gt, props, subset="val", max_avg_proposals=2,
                             tiou_thresholds=[0.5])
    # 4 proposals, 2 videos, A = 2: everything kept; point j takes floor(2 * j / 100)
    an = np.asarray(out["average_nr_proposals"])
    assert an[0] == pytest.approx(0.02) and an[-1] == pytest.approx(2.0)
    ar = np.asarray(out["average_recall"])
    assert (ar[:49] == 0).all()                  # fewer than one proposal per video
    assert (ar[49:99] == 0.5).all()              # 1 proposal: only video a's instance
    assert ar[99] == 1.0                         # 2 proposals: both
    assert out["AR@2"] == 1.0
    # area: trapezoids of the step curve, over A
    want = np.sum(0.5 * (ar[1:] + ar[:-1]) * np.diff(an)) / 2.0
    assert out["AUC"] == pytest.approx(want)
    assert out["AUC"] == pytest.approx((0.5 * 0.02 * 0.5 + 49 * 0.02 * 0.5 + 0.02 * 0.75) / 2)


def test_thresholds_are_averaged_and_labels_ignored():
    gt = _gt({"a": [(0, 10), (20, 40)]})
    # IoU 0.6 with the first instance, 0.9 with the second (a 'label' is ignored)
    props = {"results": {"a": [{"segment": [0, 6], "score": 0.5, "label": "x"},
                               {"segment": [20, 38], "score": 0.4, "label": "y"}]}}
    out = evaluate_proposals(gt, props, subset="val", max_avg_proposals=2,
                             tiou_thresholds=[0.5, 0.7, 0.95])
    rec = np.asarray(out["recall"])
    assert rec[:, -1].tolist() == [1.0, 0.5, 0.0]
    assert out["AR@2"] == pytest.approx(0.5)
    # at one proposal per video only the first (score 0.5) counts
    assert rec[:, 49].tolist() == [0.5, 0.0, 0.0]


def test_fewer_proposals_are_kept_when_videos_have_more_than_the_average():
    gt = _gt({"a": [(0, 10)], "b": [(0, 10)]})
    # 4 + 0 proposals for A = 1 over 2 videos: ratio 0.5, video a keeps its best 2
    props = _props({"a": [((50, 60), 0.9), ((0, 10), 0.8), ((0, 9), 0.7), ((1, 9), 0.6)]})
    out = evaluate_proposals(gt, props, subset="val", max_avg_proposals=1,
                             tiou_thresholds=[0.5])
    assert out["average_nr_proposals"][-1] == pytest.approx(1.0)
    assert out["AR@1"] == 0.5                     # a's instance found, b has no proposal
    assert np.asarray(out["average_recall"])[:49].max() == 0.0


def test_no_proposals_and_bad_input():
    gt = _gt({"a": [(0, 10)]})
    out = evaluate_proposals(gt, {"results": {}}, subset="val")
    assert out["AR@100"] == 0.0 and out["AUC"] == 0.0
    with pytest.raises(ValueError, match="results"):
        evaluate_proposals(gt, {"proposals": {}}, subset="val")
    with pytest.raises(ValueError, match=r"results\['a'\]"):
        evaluate_proposals(gt, {"results": {"a": [{"segment": [0, 1]}]}}, subset="val")
    with pytest.raises(ValueError, match="max_avg_proposals"):
        evaluate_proposals(gt, {"results": {}}, subset="val", max_avg_proposals=0)


def test_model_detections_add_proposal_metrics_in_the_label_space():
    from pytal.evaluation import evaluate, evaluate_model_detections
    from pytal.io.annotations import AnnotationError

    # two labellings of the same segments, as EPIC-KITCHENS-100's verb / noun
    gt = {"database": {"a": {"subset": "val", "duration": 100.0, "annotations": [
        {"segment": [0, 10], "label": {"verb": "open", "noun": "door"}},
        {"segment": [20, 30], "label": {"verb": "take", "noun": "cup"}}]}}}
    detections = {"results": {"a": [{"segment": [0, 10], "score": 0.9, "label": "open"}]},
                  "proposals": {"a": [{"segment": [20, 30], "score": 0.8},
                                      {"segment": [0, 10], "score": 0.7}]}}
    out = evaluate_model_detections(gt, detections, subset="val", tiou_thresholds=[0.5],
                                    label_space="verb")
    plain = evaluate(gt, detections, subset="val", tiou_thresholds=[0.5], label_space="verb")
    assert {k: v for k, v in out.items() if k != "proposals"} == plain
    curve = evaluate_proposals(gt, {"results": detections["proposals"]}, subset="val",
                               label_space="verb")
    assert out["proposals"] == {"AR@100": curve["AR@100"], "AUC": curve["AUC"]}
    assert out["proposals"]["AR@100"] == 1.0
    with pytest.raises(AnnotationError, match="label_space|label space"):
        evaluate_proposals(gt, {"results": detections["proposals"]}, subset="val")
    # a detector without a proposal stage: mAP only
    no_proposals = {"results": detections["results"]}
    assert "proposals" not in evaluate_model_detections(gt, no_proposals, subset="val",
                                                        tiou_thresholds=[0.5],
                                                        label_space="verb")

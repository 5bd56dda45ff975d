"""Named sub-averages of the mAP (Avg{0.1:0.5}, Avg{0.3:0.7}): which threshold sets give them,
their values in evaluate(), and the printed table."""
import pytest

from pytal.cli import format_result
from pytal.evaluation import evaluate, tiou_range
from pytal.evaluation.thresholds import (ACTIVITYNET_TIOU, EPIC_TIOU, MULTITHUMOS_TIOU,
                                         THUMOS14_TIOU, sub_average_sets)


def test_sets_by_hand():
    assert sub_average_sets(tiou_range(0.1, 0.7, 0.1)) == {"0.1:0.5": [0, 1, 2, 3, 4],
                                                          "0.3:0.7": [2, 3, 4, 5, 6]}
    assert sub_average_sets(MULTITHUMOS_TIOU) == {"0.1:0.5": [0, 1, 2, 3, 4],
                                                 "0.3:0.7": [2, 3, 4, 5, 6]}
    assert sub_average_sets([0.7, 0.3, 0.5, 0.4, 0.6, 0.2]) == {"0.3:0.7": [1, 3, 2, 4, 0]}
    for whole in (THUMOS14_TIOU, EPIC_TIOU, ACTIVITYNET_TIOU, [0.5]):   # no strict subset
        assert sub_average_sets(whole) == {}


def _gt_and_predictions():
    gt = {"database": {"v": {"subset": "test", "duration": 100.0, "annotations": [
        {"segment": [0.0, 10.0], "label": "A"}, {"segment": [20.0, 30.0], "label": "B"}]}}}
    # tIoU 0.8 and 6 / 14 = 0.43 with the ground truth: A found up to 0.8, B up to 0.4
    results = {"v": [{"label": "A", "score": 0.9, "segment": [0.0, 8.0]},
                     {"label": "B", "score": 0.8, "segment": [24.0, 34.0]}]}
    return gt, {"results": results}


def test_evaluate_reports_them_for_thumos_0_1_to_0_7():
    gt, pred = _gt_and_predictions()
    result = evaluate(gt, pred, subset="test", tiou_thresholds="0.1:0.7:0.1")
    # mAP per threshold: 1 up to 0.4, then 0.5 (B missed) -> 0.1:0.5 gives (4 + 0.5) / 5
    assert result["mAP"] == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.5])
    assert result["sub_averages"] == pytest.approx({"0.1:0.5": 0.9, "0.3:0.7": 0.7})
    table = format_result(result)
    assert "avg 0.1:0.5     90.00" in table and "avg 0.3:0.7     70.00" in table


def test_other_presets_keep_their_keys():
    gt, pred = _gt_and_predictions()
    for preset in ("thumos14", "activitynet", "epic"):
        result = evaluate(gt, pred, subset="test", tiou_thresholds=preset)
        assert set(result) == {"tiou_thresholds", "mAP", "average_mAP", "per_class_ap"}
        assert "avg 0." not in format_result(result)

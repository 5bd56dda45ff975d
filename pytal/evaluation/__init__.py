"""Evaluation: temporal action detection mAP with the ActivityNet protocol, and proposals'
average recall (AR-AN curve, AR@100, AUC).

Public names::

    evaluate(ground_truth, predictions, *, subset, tiou_thresholds) -> dict
    evaluate_proposals(ground_truth, proposals, *, subset, max_avg_proposals=100) -> dict
    evaluate_model_detections(ground_truth, detections, *, subset, tiou_thresholds) -> dict
        (mAP, plus AR@100 / AUC of the detections' "proposals" when there are some)
    THUMOS14_TIOU, ACTIVITYNET_TIOU, parse_tiou_thresholds, tiou_range
    interpolated_average_precision, match_detections, segment_iou
"""
from pytal.evaluation.ap import interpolated_average_precision
from pytal.evaluation.detection import evaluate
from pytal.evaluation.matching import match_detections, segment_iou
from pytal.evaluation.proposals import evaluate_proposals
from pytal.evaluation.reports import evaluate_model_detections
from pytal.evaluation.thresholds import (ACTIVITYNET_TIOU, THUMOS14_TIOU, parse_tiou_thresholds,
                                         tiou_range)

__all__ = [
    "ACTIVITYNET_TIOU", "THUMOS14_TIOU", "evaluate", "evaluate_model_detections", "evaluate_proposals", "interpolated_average_precision",
    "match_detections", "parse_tiou_thresholds", "segment_iou", "tiou_range",
]

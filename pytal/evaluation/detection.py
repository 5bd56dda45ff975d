"""Temporal action detection mAP with the ActivityNet protocol.

Semantics follow the official evaluator (ActivityNet ``Evaluation/eval_detection.py``):

* Ground truth: the annotations of the videos of ``subset``. The classes are the labels that
  occur there; mAP is the mean AP over them.
* Per class, detections are ranked by descending score (ties: the order of the prediction
  file, i.e. a stable sort) and matched greedily (:mod:`pytal.evaluation.matching`): each
  ground-truth instance at most once per tIoU threshold.
* AP: :func:`pytal.evaluation.ap.interpolated_average_precision`; a class without detections
  scores 0.
* Detections of a video that is not in ``subset`` count as false positives of their class,
  as in the official code (it ranks them with the others and finds no ground truth for them);
  ``unknown_videos="ignore"`` drops them instead, for prediction files that cover several subsets.
* Detections whose label is not a ground-truth class of the subset are dropped with a warning
  (the official code stops with a KeyError).

Where pytal differs: a tIoU with an empty union (two zero-length segments) is 0, where the
official code divides 0 by 0 and counts the NaN as a match; score ties are broken by file order
(the official ``argsort()[::-1]`` leaves them to the sorting algorithm); blocked videos are
not fetched from a server.
"""
from __future__ import annotations

import warnings
from itertools import chain
from typing import Any, Optional

import numpy as np

from pytal.io.annotations import load_instances
from pytal.io.detections import load_detections
from pytal.io.jsonio import PathOrDict
from pytal.evaluation.ap import sparse_class_average_precision
from pytal.evaluation.matching import true_positives
from pytal.evaluation.thresholds import ThresholdSpec, parse_tiou_thresholds, sub_average_sets

UNKNOWN_VIDEO_MODES = ("false_positive", "ignore")
#: The one class of a class-agnostic evaluation (``evaluate(..., class_agnostic=True)``).
AGNOSTIC_LABEL = "(any class)"


class _GroundTruth:
    """The subset's instances as arrays: ``video`` / ``label`` indices, ``segments`` (G, 2) s."""

    def __init__(self, source: PathOrDict, subset: str, label_space: Optional[str] = None,
                 class_agnostic: bool = False) -> None:
        table = load_instances(source, subset, label_space)
        self.class_agnostic = class_agnostic
        self.video_index = dict(zip(table.video_ids, range(len(table.video_ids))))
        labels = [AGNOSTIC_LABEL] * len(table.labels) if class_agnostic else table.labels
        self.labels = sorted(set(labels))
        if not self.labels:
            raise ValueError(f"{table.source}: subset {subset!r} has no annotated action "
                             "to evaluate against")
        self.label_index = {n: i for i, n in enumerate(self.labels)}
        self.video, self.segments = table.video, table.segments
        self.label = np.fromiter(map(self.label_index.__getitem__, labels), np.int64,
                                 count=len(labels))


class _Predictions:
    """The submission's detections as arrays, in file order (``video`` -1: not in the subset).

    Attributes: ``video``, ``label`` (D,) int64 indices into the ground truth's videos and
    classes; ``score`` (D,) float64; ``segments`` (D, 2) float64 seconds.
    """

    def __init__(self, source: PathOrDict, gt: _GroundTruth, unknown_videos: str) -> None:
        table = load_detections(source, gt.label_index, gt.video_index)
        where, results = table.source, table.results
        self.video, self.label, self.score, self.segments = (
            table.video, table.label, table.score, table.segments)
        if gt.class_agnostic:
            self.label = np.zeros_like(self.label)
        keep = self.label >= 0
        if not keep.all():
            detections = chain.from_iterable(results.values())
            unknown = sorted({str(d["label"]) for d, k in zip(detections, keep) if not k})
            warnings.warn(f"{where}: ignoring {int((~keep).sum())} detections whose label is not "
                          f"a ground-truth class of the subset: {unknown[:10]}"
                          f"{' ...' if len(unknown) > 10 else ''}", stacklevel=3)
        outside = self.video < 0
        if outside.any():
            count = sum(1 for v, dets in results.items() if dets and v not in gt.video_index)
            action = "ignored" if unknown_videos == "ignore" else "counted as false positives"
            warnings.warn(f"{where}: {int(outside.sum())} detections of {count} videos not in the "
                          f"subset are {action}", stacklevel=3)
            if unknown_videos == "ignore":
                keep &= ~outside
        if not keep.all():
            self.video, self.label = self.video[keep], self.label[keep]
            self.score, self.segments = self.score[keep], self.segments[keep]


def evaluate(ground_truth: PathOrDict, predictions: PathOrDict, *, subset: str,
             tiou_thresholds: ThresholdSpec, unknown_videos: str = "false_positive",
             label_space: Optional[str] = None, class_agnostic: bool = False) -> dict[str, Any]:
    """Detection mAP of a submission against ActivityNet-style ground truth.

    Args:
        ground_truth: annotation JSON path or loaded dict (``{"database": ...}``).
        predictions: submission JSON path or loaded dict:
            ``{"version", "results": {video_id: [{"label", "score", "segment": [s, e]}]},
            "external_data": {}}``, segments in seconds.
        subset: the ground-truth subset to evaluate on (e.g. ``"test"``, ``"validation"``).
        tiou_thresholds: numbers, ``"start:stop:step"``, or a preset (``"thumos14"``:
            0.3:0.7:0.1, ``"activitynet"``: 0.5:0.95:0.05).
        unknown_videos: ``"false_positive"`` (the official behaviour) or ``"ignore"`` for
            detections of videos outside ``subset``.
        label_space: the labelling to evaluate, for a file with several (``"verb"`` /
            ``"noun"`` of EPIC-KITCHENS-100; :mod:`pytal.io.annotations`).
        class_agnostic: labels are ignored: every ground-truth instance and detection is one
            class, :data:`AGNOSTIC_LABEL` (the mAP is that class's AP).

    Returns:
        ``{"tiou_thresholds": [R floats], "mAP": [R floats], "average_mAP": float,
        "per_class_ap": {label: [R floats]}}`` (labels sorted), plus ``"sub_averages":
        {name: float}`` when the thresholds strictly contain named sets
        (:data:`pytal.evaluation.thresholds.SUB_AVERAGES`: ``"0.1:0.5"``, ``"0.3:0.7"``),
        plus ``"class_agnostic": true`` when ``class_agnostic``.
    """
    if unknown_videos not in UNKNOWN_VIDEO_MODES:
        raise ValueError(f"unknown_videos must be one of {UNKNOWN_VIDEO_MODES}, got {unknown_videos!r}")
    thresholds = np.asarray(parse_tiou_thresholds(tiou_thresholds), dtype=np.float64)
    gt = _GroundTruth(ground_truth, subset, label_space, class_agnostic)
    pred = _Predictions(predictions, gt, unknown_videos)
    ap = average_precision(gt, pred, thresholds)                      # (R, K)
    m_ap = ap.mean(axis=1)
    result = {
        "tiou_thresholds": thresholds.tolist(),
        "mAP": m_ap.tolist(),
        "average_mAP": float(m_ap.mean()),
        "per_class_ap": {label: ap[:, k].tolist() for k, label in enumerate(gt.labels)},
    }
    subs = sub_average_sets(thresholds.tolist())
    if subs:
        result["sub_averages"] = {name: float(m_ap[index].mean()) for name, index in subs.items()}
    if class_agnostic:
        result["class_agnostic"] = True
    return result


def average_precision(gt: _GroundTruth, pred: _Predictions, thresholds: np.ndarray) -> np.ndarray:
    """(R, K) AP per threshold and ground-truth class."""
    num_classes, num_videos = len(gt.labels), len(gt.video_index)
    order = ranking(pred.label, pred.score)
    label, video = pred.label[order], pred.video[order]
    group = label * num_videos + video
    group[video < 0] = -1
    row, col = true_positives(group, np.take(pred.segments, order, axis=0),
                              gt.label * num_videos + gt.video, gt.segments, thresholds)
    bounds = np.searchsorted(label, np.arange(num_classes + 1))
    return sparse_class_average_precision(row, col, len(thresholds), bounds,
                                          np.bincount(gt.label, minlength=num_classes))


def ranking(label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order of detections by class, then descending score, ties in file order (stable).

    ``label`` (D,) int64 >= 0, ``score`` (D,) float64 -> (D,) int64 permutation. Sorts by score
    with quicksort and falls back to a stable sort only when two scores are equal; the class
    pass is a stable (radix) sort on 16-bit labels when they fit.
    """
    by_score = np.argsort(-score)
    ranked = score[by_score]
    if (ranked[1:] == ranked[:-1]).any():
        by_score = np.argsort(-score, kind="stable")
    small = label.astype(np.int16) if len(label) and label.max() < 2 ** 15 else label
    return by_score[np.argsort(small[by_score], kind="stable")]

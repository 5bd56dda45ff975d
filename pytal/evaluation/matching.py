"""Greedy matching of ranked detections to ground truth, for all videos and classes at once.

The rule (ActivityNet's detection evaluator): detections are taken in order of descending
score; each one matches, independently for every tIoU threshold, the not yet matched
ground-truth instance of its video and class with the highest tIoU, if that tIoU reaches the
threshold; otherwise it is a false positive.

The order only matters among detections that share a (class, video) group, so round ``r``
handles the ``r``-th ranked detection of every group together: ``max group size`` vectorised
rounds instead of one Python step per detection. Within a round, every (detection, ground
truth of its group) pair is one element of a flat array, so the work is proportional to the
number of such pairs, however unevenly the ground truth is spread over groups.
"""
from __future__ import annotations

import numpy as np

from pytal.evaluation._ragged import ragged_arange


def segment_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Element-wise tIoU of segments pred (..., 2) and gt (..., 2); 0 where the union is empty."""
    inter = np.clip(np.minimum(pred[..., 1], gt[..., 1]) - np.maximum(pred[..., 0], gt[..., 0]),
                    0.0, None)
    union = (gt[..., 1] - gt[..., 0]) + (pred[..., 1] - pred[..., 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_detections(pred_group: np.ndarray, pred_segments: np.ndarray,
                     gt_group: np.ndarray, gt_segments: np.ndarray,
                     thresholds: np.ndarray) -> np.ndarray:
    """Which detections are true positives, per threshold.

    Args:
        pred_group: (P,) int64 group id (one per (class, video)) of each detection, detections
            ranked by descending score within each group. A detection whose group has no
            ground truth (e.g. id -1) is a false positive.
        pred_segments: (P, 2) float64 [start, end].
        gt_group: (G,) int64 group id of each ground-truth instance (>= 0). Among equal tIoUs
            the instance listed first wins.
        gt_segments: (G, 2) float64 [start, end].
        thresholds: (R,) tIoU thresholds.

    Returns: (R, P) bool true positives.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    num_thresholds, num_pred = len(thresholds), len(pred_group)
    tp = np.zeros((num_thresholds, num_pred), dtype=bool)
    if num_pred == 0 or len(gt_group) == 0:
        return tp

    # Ground truth sorted by group (stable: file order within a group).
    gt_order = np.argsort(gt_group, kind="stable")
    groups, gt_first, gt_count = np.unique(gt_group[gt_order], return_index=True,
                                           return_counts=True)

    # Detections that have ground truth in their group, ordered by (rank in group, group).
    row = np.minimum(np.searchsorted(groups, pred_group), len(groups) - 1)
    det = np.flatnonzero((pred_group >= 0) & (groups[row] == pred_group))
    if len(det) == 0:
        return tp
    det = det[np.argsort(row[det], kind="stable")]                     # by group, then rank
    det_row = row[det]
    new_group = np.r_[True, det_row[1:] != det_row[:-1]]
    rank = np.arange(len(det)) - np.maximum.accumulate(np.where(new_group, np.arange(len(det)), 0))
    by_round = np.argsort(rank, kind="stable")
    det, det_row, rank = det[by_round], det_row[by_round], rank[by_round]

    # Every (detection, ground truth of its group) pair, grouped by detection.
    width = gt_count[det_row]
    pair_gt = gt_order[np.repeat(gt_first[det_row], width) + ragged_arange(width)]
    pair_iou = segment_iou(np.repeat(pred_segments[det], width, axis=0), gt_segments[pair_gt])
    pair_start = np.cumsum(width) - width                               # first pair of each det

    # Arrays are (pairs or detections, thresholds): reductions run over contiguous rows.
    locked = np.zeros((len(gt_group), num_thresholds), dtype=bool)
    round_bounds = np.searchsorted(rank, np.arange(int(rank[-1]) + 2))
    for r in range(int(rank[-1]) + 1):
        lo, hi = round_bounds[r], round_bounds[r + 1]                   # detections of round r
        p_lo = pair_start[lo]
        p_hi = pair_start[hi] if hi < len(det) else len(pair_gt)
        gts = pair_gt[p_lo:p_hi]
        free = np.where(locked[gts], -np.inf, pair_iou[p_lo:p_hi, None])      # (pairs, R)
        starts = pair_start[lo:hi] - p_lo
        best = np.maximum.reduceat(free, starts, axis=0)                       # (dets, R)
        is_best = free == np.repeat(best, width[lo:hi], axis=0)
        position = np.where(is_best, np.arange(p_hi - p_lo)[:, None], p_hi - p_lo)
        first_best = np.minimum.reduceat(position, starts, axis=0)             # (dets, R)
        d, t = np.nonzero(best >= thresholds)
        locked[gts[first_best[d, t]], t] = True
        tp[t, det[lo + d]] = True
    return tp

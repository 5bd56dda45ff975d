"""Average precision from ranked true/false positives (ActivityNet / VOC 2011 interpolation).

Precision is made monotone from the right (the precision at recall r is the best precision at
any recall >= r) and integrated over the recall steps, with the recall axis closed by the
points (0, 0) and (1, 0). A class without detections has AP 0.

Recall only steps up at true positives, and there the monotone precision is the best precision
of this or a later true positive (a false positive never raises precision), so only true
positives are visited: the work is bounded by the number of ground-truth instances.
"""
from __future__ import annotations

import numpy as np

from pytal.evaluation._ragged import ragged_arange, run_suffix_max


def interpolated_average_precision(true_positive: np.ndarray, num_positives: int) -> np.ndarray:
    """Interpolated AP of one class.

    Args:
        true_positive: (R, N) bool, detections ranked by descending score along N (one row
            per tIoU threshold): whether each matched a ground-truth instance.
        num_positives: number of ground-truth instances (> 0).

    Returns: (R,) float64.
    """
    true_positive = np.asarray(true_positive, dtype=bool)
    bounds = np.array([0, true_positive.shape[1]])
    return class_average_precision(true_positive, bounds, np.array([num_positives]))[:, 0]


def class_average_precision(true_positive: np.ndarray, bounds: np.ndarray,
                            num_positives: np.ndarray) -> np.ndarray:
    """Interpolated AP of K classes at once.

    Args:
        true_positive: (R, N) bool; the detections of class k are columns
            ``bounds[k]:bounds[k + 1]``, ranked by descending score.
        bounds: (K + 1,) non-decreasing column offsets, ``bounds[0] = 0``, ``bounds[K] = N``.
        num_positives: (K,) ground-truth instances per class, all > 0.

    Returns: (R, K) float64.
    """
    true_positive = np.asarray(true_positive, dtype=bool)
    return sparse_class_average_precision(*np.nonzero(true_positive), true_positive.shape[0],
                                          bounds, num_positives)


def sparse_class_average_precision(row: np.ndarray, col: np.ndarray, num_thresholds: int,
                                   bounds: np.ndarray, num_positives: np.ndarray) -> np.ndarray:
    """:func:`class_average_precision` from the true positives' coordinates ``row`` (threshold)
    and ``col`` (detection), int64 (T,), sorted by row, then column. Returns (R, K) float64."""
    bounds = np.asarray(bounds, dtype=np.int64)
    num_positives = np.asarray(num_positives, dtype=np.float64)
    if (num_positives <= 0).any():
        raise ValueError("num_positives must be > 0 for every class")
    num_classes = len(num_positives)
    ap = np.zeros((num_thresholds, num_classes))
    if len(row) == 0:
        return ap
    cls = np.searchsorted(bounds, col, side="right") - 1
    run = row * num_classes + cls                        # one run per (threshold, class)
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    sizes = np.diff(np.r_[starts, len(run)])
    hits = ragged_arange(sizes) + 1.0                     # true positives so far in the class
    precision = hits / (col - bounds[cls] + 1)
    positives = num_positives[cls]
    recall_step = hits / positives - (hits - 1.0) / positives
    area = recall_step * run_suffix_max(precision, sizes)
    ap[row[starts], cls[starts]] = np.add.reduceat(area, starts)
    return ap

"""Greedy matching of ranked detections to ground truth, for all videos and classes at once.

The rule (ActivityNet's detection evaluator): detections are taken in order of descending
score; each one matches, independently for every tIoU threshold, the not yet matched
ground-truth instance of its video and class with the highest tIoU, if that tIoU reaches the
threshold; otherwise it is a false positive.

How it is vectorised:

* Only (detection, ground truth) pairs of the same (class, video) group with a tIoU of at
  least the smallest threshold can ever match; the others are dropped up front, and a
  detection left without pairs is a false positive at every threshold (it locks nothing).
  In crowded groups (THUMOS-style, dozens of instances per class and video) each detection's
  instances are first narrowed to those whose start can reach that tIoU at all.
* Each detection's pairs are sorted by descending tIoU (ties: the instance listed first), so
  "the best free instance" is the first of its pairs that is not yet matched at that threshold,
  and a first free pair below the threshold means a false positive.
* The order only matters among detections of one group, so round ``r`` handles the ``r``-th
  ranked candidate detection of every group together (``max candidates per group`` rounds);
  within a round, step ``k`` tries every still undecided detection's ``k``-th pair.
* The thresholds are the bits of one uint64 per detection and per instance (64 at a time), so
  every step works on flat 1-D arrays: "matched at which thresholds" is a bit mask.
"""
from __future__ import annotations

import numpy as np

from pytal.evaluation._ragged import ragged_arange, run_position


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
    tp = np.zeros((len(thresholds), len(pred_group)), dtype=bool)
    tp[true_positives(pred_group, pred_segments, gt_group, gt_segments, thresholds)] = True
    return tp


def true_positives(pred_group: np.ndarray, pred_segments: np.ndarray, gt_group: np.ndarray,
                   gt_segments: np.ndarray, thresholds: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_detections` as coordinates: ``(threshold, detection)`` int64 index arrays
    of the true positives, sorted by threshold, then detection (what ``np.nonzero`` of the
    dense (R, P) result gives)."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    found: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    if len(pred_group) and len(gt_group) and len(thresholds):
        pairs = candidate_pairs(pred_group, pred_segments, gt_group, gt_segments,
                                thresholds.min())
        if len(pairs[0]):
            rounds = _round_order(pairs[0], pred_group)
            num_chunks = -(-len(thresholds) // MASK_BITS)
            for chunk in np.array_split(np.arange(len(thresholds)), num_chunks):
                reach, bit = threshold_masks(pairs[2], thresholds[chunk])
                hits = _greedy_rounds(*rounds, pairs[1], reach, len(gt_group), len(pred_group))
                matched = np.flatnonzero(hits)
                for t, b in zip(chunk, bit):
                    det = matched[((hits[matched] >> b) & np.uint64(1)).astype(bool)]
                    found.append((np.full(len(det), t, dtype=np.int64), det))
    return np.concatenate([t for t, _ in found]), np.concatenate([d for _, d in found])


#: Thresholds handled together as the bits of one uint64.
MASK_BITS = 64


def threshold_masks(tiou: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds as bits: ``(reach, bit)``.

    ``thresholds`` (R <= 64,) get bits in ascending order: ``bit`` (R,) uint64 is the bit of
    each threshold, and ``reach`` (n,) uint64 has, for each tIoU, the bits of the thresholds
    it reaches (``tiou >= threshold``).
    """
    ascending = np.argsort(thresholds, kind="stable")
    bit = np.empty(len(thresholds), dtype=np.uint64)
    bit[ascending] = np.arange(len(thresholds), dtype=np.uint64)
    below = np.array([(1 << c) - 1 for c in range(len(thresholds) + 1)], dtype=np.uint64)
    return below[np.searchsorted(thresholds[ascending], tiou, side="right")], bit


def candidate_pairs(pred_group: np.ndarray, pred_segments: np.ndarray, gt_group: np.ndarray,
                    gt_segments: np.ndarray, min_tiou: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (detection, ground truth of its group) pair with tIoU >= ``min_tiou``.

    Returns ``(det, gt, tiou)``, each (n,): detection index into ``pred_group``, instance index
    into ``gt_group``, tIoU. Sorted by detection, then descending tIoU, then instance (file
    order).
    """
    gt_order = np.argsort(gt_group, kind="stable")
    groups, gt_first, gt_count = np.unique(gt_group[gt_order], return_index=True,
                                           return_counts=True)
    row = group_rows(groups, pred_group)
    det = np.flatnonzero(row >= 0)
    lo, width = gt_first[row[det]], gt_count[row[det]]                  # the whole group
    if width.sum() > WINDOW_MIN_PAIRS * len(det):                       # crowded: narrow it
        gt_order = np.lexsort((gt_segments[:, 0], gt_group))            # by group, then start
        lo, hi = _start_window(row[det], np.take(pred_segments, det, axis=0),
                               np.repeat(np.arange(len(groups)), gt_count),
                               gt_segments[gt_order, 0], min_tiou)
        width = hi - lo
    pair_det = np.repeat(det, width)
    pair_gt = gt_order[np.repeat(lo, width) + ragged_arange(width)]
    pair_iou = segment_iou(np.take(pred_segments, pair_det, axis=0),
                           np.take(gt_segments, pair_gt, axis=0))
    keep = np.flatnonzero(pair_iou >= min_tiou)
    pair_det, pair_gt, pair_iou = pair_det[keep], pair_gt[keep], pair_iou[keep]
    order = _by_descending_tiou(pair_det, pair_gt, pair_iou)
    return pair_det[order], pair_gt[order], pair_iou[order]


#: Mean (detection, instance of its group) pairs per detection above which
#: :func:`candidate_pairs` first narrows each detection's instances to a window of starts.
WINDOW_MIN_PAIRS = 4


def _start_window(det_row: np.ndarray, det_segments: np.ndarray, gt_row: np.ndarray,
                  gt_start: np.ndarray, min_tiou: float) -> tuple[np.ndarray, np.ndarray]:
    """For each detection, the range ``lo:hi`` (each (d,)) of the instances sorted by (group
    ``gt_row``, start ``gt_start``), both (g,), that can reach ``min_tiou`` with it.

    A tIoU of at least t with a detection [s, e] of length L needs an instance start in
    [e - L / t, e] (before s the union spans at least from the instance start to e, and the
    intersection is at most L). The lower bound gets a relative margin of 1e-9 against
    rounding; the pairs are filtered by their exact tIoU afterwards. Starts are replaced by
    their ranks so that (group, start) is one exact integer key.
    """
    levels = np.unique(gt_start)
    span = len(levels) + 1                                    # key = row * span + start rank
    gt_key = gt_row * span + np.searchsorted(levels, gt_start)
    start, end = det_segments[:, 0], det_segments[:, 1]
    reach = (end - start) / min_tiou if min_tiou > 0 else np.full(len(end), np.inf)
    low = end - reach - 1e-9 * (np.abs(end) + np.abs(reach))
    lo = np.searchsorted(gt_key, det_row * span + np.searchsorted(levels, low, side="left"))
    hi = np.searchsorted(gt_key, det_row * span + np.searchsorted(levels, end, side="right"))
    return lo, np.maximum(hi, lo)


#: Largest group id for which :func:`group_rows` uses a lookup table (int32, lazily zeroed).
LOOKUP_LIMIT = 1 << 23


def group_rows(groups: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each id of ``query`` (n,) int64 in ``groups`` (m,) (sorted, distinct, >= 0),
    or -1 where absent: a lookup table when the ids are small, else a binary search."""
    if groups[-1] < LOOKUP_LIMIT:
        table = np.zeros(int(groups[-1]) + 3, dtype=np.int32)            # last entry: absent
        table[groups + 1] = np.arange(1, len(groups) + 1, dtype=np.int32)
        return table[np.clip(query + 1, 0, len(table) - 1)].astype(np.int64) - 1
    row = np.minimum(np.searchsorted(groups, query), len(groups) - 1)
    return np.where(groups[row] == query, row, -1)


def _by_descending_tiou(pair_det: np.ndarray, pair_gt: np.ndarray,
                        pair_iou: np.ndarray) -> np.ndarray:
    """Permutation that sorts each detection's run of pairs by descending tIoU, then instance.

    ``pair_det`` (n,) is non-decreasing; only runs of two or more pairs are sorted.
    """
    sizes = np.diff(np.flatnonzero(np.r_[True, pair_det[1:] != pair_det[:-1], True]))
    order = np.arange(len(pair_det))
    multi = np.flatnonzero(np.repeat(sizes > 1, sizes))
    order[multi] = multi[np.lexsort((pair_gt[multi], -pair_iou[multi], pair_det[multi]))]
    return order


def _round_order(pair_det: np.ndarray, pred_group: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidate detections in matching order.

    Returns ``(det, first, num_pairs, round_bounds)``: candidate detections (m,) ordered by
    round (their rank among the candidates of their group), then group; the index of each
    one's first pair and its number of pairs (m,); round ``r`` is
    ``round_bounds[r]:round_bounds[r + 1]``.
    """
    first = np.flatnonzero(np.r_[True, pair_det[1:] != pair_det[:-1]])
    num_pairs = np.diff(np.r_[first, len(pair_det)])
    group = pred_group[pair_det[first]]
    by_group = np.argsort(group, kind="stable")                        # by group, then rank
    rank = np.empty_like(by_group)
    rank[by_group] = run_position(group[by_group])
    by_round = np.argsort(rank, kind="stable")
    round_bounds = np.searchsorted(rank[by_round], np.arange(int(rank.max()) + 2))
    return pair_det[first][by_round], first[by_round], num_pairs[by_round], round_bounds


def _greedy_rounds(det: np.ndarray, first: np.ndarray, num_pairs: np.ndarray,
                   round_bounds: np.ndarray, pair_gt: np.ndarray, reach: np.ndarray,
                   num_gt: int, num_pred: int) -> np.ndarray:
    """Greedy matching over the sorted candidate pairs (module docstring), thresholds as bits.

    ``det``, ``first``, ``num_pairs``, ``round_bounds``: from :func:`_round_order`;
    ``pair_gt`` (n,) instance of each pair; ``reach`` (n,) uint64 threshold bits each pair's
    tIoU reaches. Returns (num_pred,) uint64: the thresholds at which each detection matched.
    """
    locked = np.zeros(num_gt, dtype=np.uint64)                         # matched at these bits
    hits = np.zeros(num_pred, dtype=np.uint64)
    for r in range(len(round_bounds) - 1):
        todo = np.arange(round_bounds[r], round_bounds[r + 1])          # one per group
        undecided = np.full(len(todo), ~np.uint64(0))
        k = 0
        while len(todo):
            pair = first[todo] + k
            gts = pair_gt[pair]                                         # distinct: one group each
            reaches = undecided & reach[pair]
            take = reaches & ~locked[gts]
            locked[gts] |= take
            hits[det[todo]] |= take
            undecided = reaches & ~take                                 # best instance taken
            k += 1
            more = (undecided != 0) & (num_pairs[todo] > k)
            todo, undecided = todo[more], undecided[more]
    return hits

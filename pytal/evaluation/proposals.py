"""Temporal action proposals: average recall against the average number of proposals per
video (the AR-AN curve), its AR@AN and its area under the curve (AUC), as the ActivityNet
proposal evaluator (``Evaluation/eval_proposal.py``) and BMN report them.

Semantics:

* Ground truth: the annotated instances of the videos of ``subset``, whatever their class
  (rows as :func:`pytal.io.annotations.load_instances` reads them, of ``label_space`` for a
  file with several labellings).
* Proposals: ``{"results": {video_id: [{"segment": [s, e], "score": x, ...}]}}`` (seconds;
  any ``label`` is ignored, so a detections file is read as class-agnostic proposals); each
  video's proposals are ranked by descending score (ties: file order).
* With ``max_avg_proposals`` = A and V ground-truth videos holding P proposals in all, each
  video keeps its first ``floor(n_v * A * V / P)`` proposals (at most all of them), so that
  the kept ones average A per video; the curve's point j (j = 1 .. 100) takes the first
  ``floor(m_v * j / 100 * A * V / M)`` kept proposals of each video (M: all kept ones), i.e.
  on average ``j / 100 * A`` proposals per video.
* A ground-truth instance is recalled at tIoU threshold u when one of those proposals has a
  tIoU >= u with it (no one-to-one matching). Recall: recalled instances / instances;
  average recall: the mean over the thresholds (default 0.5:0.95:0.05).
* ``AR@A``: the average recall at the last point (A proposals per video); ``AUC``: the area
  under the AR-AN curve divided by A (the trapezoidal rule over the 100 points, from
  ``A / 100``), in [0, 1].

Where pytal differs: proposals of videos that are not ground-truth videos of the subset are
ignored (the official code counts them in P); a tIoU with an empty union is 0.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from pytal.io.annotations import load_instances
from pytal.io.jsonio import PathOrDict, read_json
from pytal.evaluation.matching import segment_iou
from pytal.evaluation.thresholds import ACTIVITYNET_TIOU, ThresholdSpec, parse_tiou_thresholds

__all__ = ["evaluate_proposals", "NUM_POINTS"]

#: Points of the AR-AN curve.
NUM_POINTS = 100


def evaluate_proposals(ground_truth: PathOrDict, proposals: PathOrDict, *, subset: str,
                       max_avg_proposals: int = 100,
                       tiou_thresholds: ThresholdSpec = ACTIVITYNET_TIOU,
                       label_space: Optional[str] = None) -> dict[str, Any]:
    """The AR-AN curve of ``proposals`` on ``subset`` (paths or loaded dicts).

    Returns ``{"tiou_thresholds": [...], "average_nr_proposals": [100 floats],
    "average_recall": [100 floats], "recall": [[100 floats] per threshold],
    "AR@<A>": float, "AUC": float}`` (recalls and AUC in [0, 1])."""
    if isinstance(max_avg_proposals, bool) or not isinstance(max_avg_proposals, int) \
            or max_avg_proposals < 1:
        raise ValueError(f"max_avg_proposals must be an integer >= 1, got {max_avg_proposals!r}")
    thresholds = np.asarray(parse_tiou_thresholds(tiou_thresholds), np.float64)
    table = load_instances(ground_truth, subset, label_space)
    if not len(table.labels):
        raise ValueError(f"{table.source}: subset {subset!r} has no annotated action to "
                         "evaluate against")
    gt_videos = np.unique(table.video)
    gt_segments = {table.video_ids[v]: table.segments[table.video == v] for v in gt_videos}
    ranked = _ranked_proposals(proposals, gt_segments)

    num_videos = len(gt_segments)
    total = sum(len(p) for p in ranked.values())
    ratio = max_avg_proposals * num_videos / total if total else 0.0
    kept = {v: p[:min(int(len(p) * ratio), len(p))] for v, p in ranked.items()}
    kept_total = sum(len(p) for p in kept.values())
    scale = max_avg_proposals * num_videos / kept_total if kept_total else 0.0
    fractions = np.arange(1, NUM_POINTS + 1) / NUM_POINTS * scale           # (J,)

    matches = np.zeros((len(thresholds), NUM_POINTS))
    positives = 0
    for video_id, segments in gt_segments.items():
        positives += len(segments)
        props = kept.get(video_id)
        if props is None or not len(props):
            continue
        tiou = segment_iou(props[:, None, :], segments[None, :, :])         # (K, G)
        # the rank of the first proposal reaching each threshold, per instance (K: none)
        reached = tiou[None, :, :] >= thresholds[:, None, None]               # (U, K, G)
        first = np.where(reached.any(axis=1), reached.argmax(axis=1), len(props))  # (U, G)
        counts = np.minimum((len(props) * fractions).astype(np.int64), len(props))  # (J,)
        matches += (first[:, :, None] < counts[None, None, :]).sum(axis=1)
    recall = matches / positives
    average_recall = recall.mean(axis=0)
    average_nr = fractions * (kept_total / num_videos)
    area = np.sum(0.5 * (average_recall[1:] + average_recall[:-1]) * np.diff(average_nr))
    auc = float(area / average_nr[-1]) if kept_total else 0.0
    return {"tiou_thresholds": thresholds.tolist(),
            "average_nr_proposals": average_nr.tolist(),
            "average_recall": average_recall.tolist(), "recall": recall.tolist(),
            f"AR@{max_avg_proposals}": float(average_recall[-1]), "AUC": auc}


def _ranked_proposals(source: PathOrDict, videos: Mapping[str, np.ndarray]
                      ) -> dict[str, np.ndarray]:
    """Per ground-truth video, its proposals (K, 2) seconds by descending score (stable)."""
    data, where = read_json(source, what="proposal")
    results = data.get("results") if isinstance(data, Mapping) else None
    if not isinstance(results, Mapping):
        raise ValueError(f"{where}: missing field 'results' (expected {{video_id: [{{'score', "
                         "'segment'}, ...]}})")
    out = {}
    for video_id, entries in results.items():
        if video_id not in videos:
            continue
        if not isinstance(entries, Sequence):
            raise ValueError(f"{where}: results[{video_id!r}] must be a list of proposals")
        try:
            score = np.asarray([float(e["score"]) for e in entries], np.float64)
            segments = np.asarray([[float(x) for x in e["segment"]] for e in entries],
                                  np.float64).reshape(-1, 2)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: every proposal of results[{video_id!r}] needs a numeric "
                             "'score' and a 'segment' [start, end] in seconds") from None
        if not (np.isfinite(score).all() and np.isfinite(segments).all()):
            raise ValueError(f"{where}: results[{video_id!r}]: scores and segments must be "
                             "finite numbers")
        out[video_id] = segments[np.argsort(-score, kind="stable")]
    return out

"""Candidates -> detections for a batch of videos: Soft-NMS, segment voting, top-k per video."""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from pytal.ops.reference.soft_nms import top_k_per_video
from pytal.ops.soft_nms import soft_nms, soft_nms_top_k

VOTING_WEIGHTS = ("score", "score_iou")

_warned_voting_with_multiclass = False


def batched_nms(segments: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                video_index: Optional[torch.Tensor] = None, *, iou_threshold: float = 0.1,
                sigma: float = 0.5, min_score: float = 1e-3, method: str = "gaussian",
                multiclass: bool = True, voting_thresh: float = 0.0, max_seg_num: int = 200,
                voting_weight: str = "score", backend: Optional[str] = None):
    """Soft-NMS, optional segment voting and top-k, for one or many videos in one op call.

    Multiclass: each (video, class) is its own Soft-NMS group. Class-agnostic
    (``multiclass=False``): each video is one group, and with ``voting_thresh > 0`` every
    kept segment's boundaries are replaced by the weighted mean of the same video's input
    candidates whose IoU with it (plain lengths, no epsilon) is at least ``voting_thresh``,
    weighted by score (``voting_weight="score"``, what the released code of ActionFormer,
    TriDet and CLTDR-GMG computes) or by score x IoU (``"score_iou"``). As in that code,
    voting applies only to class-agnostic NMS; given with ``multiclass=True`` it has no
    effect and a warning is issued once.

    Args:
        segments: (N, 2) float32/float64 ``[start, end]`` in any unit (seconds or feature steps).
        scores: (N,) same dtype and device.
        labels: (N,) int64 class of each candidate.
        video_index: (N,) int64 video of each candidate, or None for a single video.
        iou_threshold, sigma, min_score, method: Soft-NMS parameters (``pytal.ops.soft_nms``).
        max_seg_num: at most this many detections per video.
        backend: forwarded to ``pytal.ops.soft_nms``.

    Returns:
        ``(segments (M, 2), scores (M,), labels (M,))`` and ``video_index (M,)`` when it was
        given: videos in ascending order, each sorted by score (descending, ties by selection
        order), at most ``max_seg_num`` each; on the device of the inputs.
    """
    _check_args(segments, scores, labels, video_index, voting_thresh, max_seg_num, voting_weight)
    nms = dict(iou_threshold=iou_threshold, sigma=sigma, min_score=min_score, method=method,
               backend=backend)
    videos = video_index
    if video_index is None:
        groups = labels if multiclass else None
    elif multiclass:
        num_classes = int(labels.max()) + 1 if labels.numel() else 1
        groups = video_index * num_classes + labels
    else:
        groups = video_index
    if groups is None and min_score >= 0:
        # One video, one group: selected scores never increase, so its first max_seg_num
        # selections are its top max_seg_num, in order.
        keep, new_scores = soft_nms(segments, scores, None, max_per_group=max_seg_num, **nms)
    else:
        if videos is None:
            videos = torch.zeros_like(labels)
        if min_score >= 0:
            keep, new_scores = soft_nms_top_k(segments, scores, groups, videos,
                                              k=max_seg_num, **nms)
        else:  # selected scores may increase: every selection of every group is needed
            keep, new_scores = soft_nms(segments, scores, groups, max_per_group=-1, **nms)
            top = top_k_per_video(videos[keep], new_scores, max_seg_num)
            keep, new_scores = keep[top], new_scores[top]
    out_segments = segments[keep]
    if voting_thresh > 0:
        if multiclass:
            _warn_voting_with_multiclass()
        else:
            if videos is None:
                videos = torch.zeros_like(labels)
            out_segments = vote_segments(out_segments, videos[keep], segments, scores, videos,
                                         voting_thresh, weight=voting_weight)
    result = (out_segments, new_scores, labels[keep])
    return result + (videos[keep],) if video_index is not None else result


def vote_segments(kept: torch.Tensor, kept_videos: torch.Tensor, candidates: torch.Tensor,
                  candidate_scores: torch.Tensor, candidate_videos: torch.Tensor,
                  iou_threshold: float, *, weight: str = "score") -> torch.Tensor:
    """Segment voting: each kept (K, 2) segment becomes the weighted mean of the candidates
    (N, 2) of its video whose IoU with it is >= ``iou_threshold``. A kept segment with no
    such candidate (possible only for zero-length segments) is returned unchanged."""
    out = kept.clone()
    for video in torch.unique(kept_videos).tolist():
        rows = (kept_videos == video).nonzero().squeeze(1)
        cols = (candidate_videos == video).nonzero().squeeze(1)
        cand, cand_scores = candidates[cols], candidate_scores[cols]
        anchors = kept[rows]
        a, c = _voting_pairs(anchors, cand, iou_threshold)
        anchor, other = anchors[a], cand[c]
        inter = (torch.minimum(anchor[:, 1], other[:, 1])
                 - torch.maximum(anchor[:, 0], other[:, 0])).clamp(min=0)
        union = (anchor[:, 1] - anchor[:, 0]) + (other[:, 1] - other[:, 0]) - inter
        iou = torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny),
                          torch.zeros_like(union))
        w = (iou >= iou_threshold).to(cand.dtype) * cand_scores[c]
        if weight == "score_iou":
            w = w * iou
        total = anchors.new_zeros(len(anchors)).index_add_(0, a, w)
        weighted = anchors.new_zeros(anchors.shape).index_add_(0, a, w[:, None] * other)
        voted = weighted / total.clamp(min=torch.finfo(total.dtype).tiny)[:, None]
        out[rows] = torch.where(total[:, None] > 0, voted, anchors)
    return out


def _voting_pairs(anchors: torch.Tensor, candidates: torch.Tensor,
                  iou_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor index (P,), candidate index (P,)): every pair of an anchor (K, 2) and a
    candidate (N, 2) whose IoU can reach ``iou_threshold``, and others. For overlapping
    segments union - inter >= |start difference| and union <= inter / t <= min length / t
    when IoU >= t, so the candidate's start lies within (1 - t) / t anchor lengths of the
    anchor's: a range of the candidates sorted by start (widened to absorb rounding)."""
    order = torch.argsort(candidates[:, 0])
    t = min(float(iou_threshold), 1.0) * (1 - 1e-4)
    if t < 0.05:  # the range would hold (nearly) every candidate
        lo = torch.zeros(len(anchors), dtype=torch.long, device=anchors.device)
        hi = torch.full_like(lo, len(candidates))
    else:
        starts = candidates[order, 0].double()
        anchor_start = anchors[:, 0].double()
        length = (anchors[:, 1] - anchors[:, 0]).double()
        radius = length * ((1 - t) / t * 1.01) + 1e-5 * (anchor_start.abs() + length + 1)
        lo = torch.searchsorted(starts, anchor_start - radius, side="left")
        hi = torch.searchsorted(starts, anchor_start + radius, side="right")
    counts = hi - lo
    a = torch.repeat_interleave(torch.arange(len(anchors), device=anchors.device), counts)
    first = torch.repeat_interleave(lo - (counts.cumsum(0) - counts), counts)
    return a, order[first + torch.arange(len(a), device=anchors.device)]


def _warn_voting_with_multiclass() -> None:
    global _warned_voting_with_multiclass
    if not _warned_voting_with_multiclass:
        _warned_voting_with_multiclass = True
        warnings.warn("batched_nms: voting_thresh > 0 has no effect with multiclass=True "
                      "(voting applies to class-agnostic NMS only, as in ActionFormer and "
                      "TriDet)", UserWarning, stacklevel=3)


def _check_args(segments, scores, labels, video_index, voting_thresh, max_seg_num,
                voting_weight) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        raise ValueError("batched_nms: labels must be an int64 tensor of shape (N,), got "
                         f"{getattr(labels, 'dtype', type(labels))} "
                         f"{tuple(getattr(labels, 'shape', ()))}")
    if isinstance(scores, torch.Tensor) and labels.shape[0] != scores.shape[0]:
        raise ValueError(f"batched_nms: labels must have shape (N,) = ({scores.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError("batched_nms: labels must be >= 0")
    if video_index is not None:
        if (not isinstance(video_index, torch.Tensor) or video_index.dtype != torch.int64
                or video_index.shape != labels.shape):
            raise ValueError("batched_nms: video_index must be an int64 tensor of shape (N,) "
                             f"= ({labels.shape[0]},)")
        if video_index.numel() and int(video_index.min()) < 0:
            raise ValueError("batched_nms: video_index must be >= 0")
    if isinstance(segments, torch.Tensor) and labels.device != segments.device:
        raise ValueError(f"batched_nms: labels must be on the device of segments "
                         f"({segments.device}), got {labels.device}")
    if not 0.0 <= float(voting_thresh) <= 1.0:
        raise ValueError(f"batched_nms: voting_thresh must be in [0, 1], got {voting_thresh}")
    if int(max_seg_num) < 0:
        raise ValueError(f"batched_nms: max_seg_num must be >= 0, got {max_seg_num}")
    if voting_weight not in VOTING_WEIGHTS:
        raise ValueError(f"batched_nms: voting_weight must be one of {list(VOTING_WEIGHTS)}, "
                         f"got {voting_weight!r}")

"""Pure-PyTorch Soft-NMS: the specification of ``pytal.ops.soft_nms`` and its fallback.

Written for clarity, not speed: one selection is a handful of tensor ops. The arithmetic is
done in the scores' dtype in the same order as the kernels (csrc/soft_nms/soft_nms.h), so the
extension matches it exactly on inputs without near-ties.
"""
from __future__ import annotations

from typing import Optional

import torch

METHODS = ("gaussian", "linear", "hard")


def segment_iou(start: torch.Tensor, end: torch.Tensor, starts: torch.Tensor,
                ends: torch.Tensor) -> torch.Tensor:
    """IoU of one segment [start, end] with each of [starts, ends]; lengths carry +1e-6."""
    inter = (torch.minimum(end, ends) - torch.maximum(start, starts)).clamp(min=0)
    union = ((end - start) + 1e-6 + ((ends - starts) + 1e-6)) - inter
    return inter / union


def decay_weight(iou: torch.Tensor, method: str, iou_threshold: float,
                 sigma: float) -> torch.Tensor:
    """Factor applied to a remaining score given its IoU with the selected segment."""
    if method == "gaussian":
        return torch.exp(-(iou * iou) / sigma)
    one = torch.ones_like(iou)
    if method == "linear":
        return torch.where(iou >= iou_threshold, 1 - iou, one)
    return torch.where(iou >= iou_threshold, torch.zeros_like(iou), one)


def _soft_nms_one_group(segments: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                        sigma: float, min_score: float, method: str,
                        max_per_group: int) -> tuple[torch.Tensor, torch.Tensor]:
    start, end = segments[:, 0], segments[:, 1]
    current = scores.clone()
    alive = current >= min_score
    limit = len(scores) if max_per_group < 0 else min(len(scores), max_per_group)
    dead = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    picks: list[int] = []
    picked_scores: list[torch.Tensor] = []
    while len(picks) < limit and bool(alive.any()):
        best = int(torch.argmax(torch.where(alive, current, dead)))  # ties: first index
        picks.append(best)
        picked_scores.append(current[best])
        alive[best] = False
        iou = segment_iou(start[best], end[best], start, end)
        current = torch.where(alive, current * decay_weight(iou, method, iou_threshold, sigma),
                              current)
        alive &= current >= min_score
    keep = torch.tensor(picks, dtype=torch.long, device=scores.device)
    if not picked_scores:
        return keep, scores.new_empty(0)
    return keep, torch.stack(picked_scores)


def soft_nms(segments: torch.Tensor, scores: torch.Tensor, groups: Optional[torch.Tensor] = None,
             *, iou_threshold: float = 0.1, sigma: float = 0.5, min_score: float = 1e-3,
             method: str = "gaussian", max_per_group: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS within each group; see ``pytal.ops.soft_nms`` for the contract.

    Arguments are assumed valid (``pytal.ops.soft_nms`` checks them).
    """
    if groups is None:
        groups = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
    sorted_groups, order = torch.sort(groups, stable=True)
    _, counts = torch.unique_consecutive(sorted_groups, return_counts=True)
    keeps, new_scores = [], []
    for members in torch.split(order, counts.tolist()):  # ascending groups, input order inside
        keep, s = _soft_nms_one_group(segments[members], scores[members], iou_threshold, sigma,
                                      min_score, method, max_per_group)
        keeps.append(members[keep])
        new_scores.append(s)
    if not keeps:
        return torch.empty(0, dtype=torch.long, device=scores.device), scores.new_empty(0)
    return torch.cat(keeps), torch.cat(new_scores)


def soft_nms_top_k(segments: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                   videos: torch.Tensor, *, k: int, iou_threshold: float = 0.1,
                   sigma: float = 0.5, min_score: float = 1e-3,
                   method: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS within each group, then each video's ``k`` best selections; see
    ``pytal.ops.soft_nms_top_k`` for the contract. Arguments are assumed valid."""
    keep, new_scores = soft_nms(segments, scores, groups, iou_threshold=iou_threshold,
                                sigma=sigma, min_score=min_score, method=method,
                                max_per_group=k)
    top = top_k_per_video(videos[keep], new_scores, k)
    return keep[top], new_scores[top]


def top_k_per_video(videos: torch.Tensor, scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices that order (videos ascending, scores descending; stable) and keep at most k
    per video."""
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(videos[order], stable=True)]
    sorted_videos = videos[order]
    first_of_video = torch.ones_like(sorted_videos, dtype=torch.bool)
    first_of_video[1:] = sorted_videos[1:] != sorted_videos[:-1]
    position = torch.arange(len(order), device=order.device)
    start = torch.cummax(torch.where(first_of_video, position, torch.zeros_like(position)), 0)
    rank = position - start.values
    return order[rank < k]

"""Label assignment: which pyramid points are positives, for which classes, and their
regression targets.

Rules (those of ActionFormer, TriDet and the CLTDR-GMG release):

* Centre sampling (``center_sample="radius"``): a point at ``t`` (stride ``s``) is inside an
  action ``[a, b]`` (centre ``c``) when ``t`` lies strictly inside
  ``[max(a, c - r*s), min(b, c + r*s)]``, with radius ``r`` in strides (1.5 by default).
  With ``center_sample="none"`` it must lie strictly inside ``[a, b]``.
* Regression range: ``max(t - a, b - t)`` must lie in the level's ``[range_lo, range_hi]``
  (both inclusive).
* Ties: among the actions that pass both tests, the shortest one wins; every action whose
  length is within 1e-3 of that minimum contributes its class (multi-label one-hot, clamped to
  1), while the regression target comes from the first shortest action (lowest index).

Units: points and segments in input feature steps; regression targets are the distances
``(t - a, b - t)`` divided by the point's stride.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from pytal.models.common.points import POINT_RANGE_HI, POINT_RANGE_LO, POINT_STRIDE, POINT_T

__all__ = ["assign_targets", "assign_targets_batch"]

_TIE_TOLERANCE = 1e-3


def assign_targets(points: torch.Tensor, gt_segments: torch.Tensor, gt_labels: torch.Tensor,
                   num_classes: int, *, center_sample: str = "radius",
                   center_sample_radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets for one video.

    Args:
        points: (N, 4) concatenated points of all levels (see ``points.PointGenerator``).
        gt_segments: (M, 2) float ``[start, end]`` in input feature steps.
        gt_labels: (M,) int64 class ids in ``[0, num_classes)``.
        num_classes: number of action classes C.
        center_sample: ``"radius"`` or ``"none"``.
        center_sample_radius: radius in strides for ``"radius"``.

    Returns:
        cls_targets (N, C) float (0/1; a point may carry several classes), and
        reg_targets (N, 2) float: (left, right) distances / stride for positives, 0 elsewhere.
        A point is positive iff its ``cls_targets`` row is non-zero.
    """
    if points.dim() != 2 or points.shape[1] != 4:
        raise ValueError(f"points: expected shape (N, 4), got {tuple(points.shape)}")
    if gt_segments.dim() != 2 or gt_segments.shape[1] != 2:
        raise ValueError(f"gt_segments: expected shape (M, 2), got {tuple(gt_segments.shape)}")
    if gt_labels.shape != gt_segments.shape[:1]:
        raise ValueError(f"gt_labels: expected shape ({gt_segments.shape[0]},), got {tuple(gt_labels.shape)}")
    if center_sample not in ("radius", "none"):
        raise ValueError(f"center_sample: expected 'radius' or 'none', got {center_sample!r}")
    if gt_labels.numel() and (gt_labels.min() < 0 or gt_labels.max() >= num_classes):
        raise ValueError(f"gt_labels: expected class ids in [0, {num_classes}), got "
                         f"[{int(gt_labels.min())}, {int(gt_labels.max())}]")

    num_pts, num_gts = points.shape[0], gt_segments.shape[0]
    dtype = points.dtype
    if num_gts == 0:
        return (points.new_zeros((num_pts, num_classes)), points.new_zeros((num_pts, 2)))

    gt = gt_segments.to(dtype)
    t = points[:, POINT_T, None]                    # (N, 1)
    stride = points[:, POINT_STRIDE, None]          # (N, 1)
    starts, ends = gt[None, :, 0], gt[None, :, 1]   # (1, M)
    left = t - starts                               # (N, M)
    right = ends - t
    dists = torch.stack((left, right), dim=-1)      # (N, M, 2)

    if center_sample == "radius":
        centre = 0.5 * (starts + ends)
        lo = torch.maximum(centre - stride * center_sample_radius, starts)
        hi = torch.minimum(centre + stride * center_sample_radius, ends)
        inside = torch.minimum(t - lo, hi - t) > 0
    else:
        inside = dists.min(dim=-1).values > 0

    max_dist = dists.max(dim=-1).values
    in_range = (max_dist >= points[:, POINT_RANGE_LO, None]) & (max_dist <= points[:, POINT_RANGE_HI, None])

    lens = (ends - starts).expand(num_pts, num_gts)
    lens = lens.masked_fill(~(inside & in_range), float("inf"))
    min_len, min_idx = lens.min(dim=1)                           # (N,)
    is_min = (lens <= min_len[:, None] + _TIE_TOLERANCE) & torch.isfinite(lens)

    one_hot = F.one_hot(gt_labels.long(), num_classes).to(dtype)  # (M, C)
    cls_targets = (is_min.to(dtype) @ one_hot).clamp_(0.0, 1.0)

    positive = torch.isfinite(min_len)
    reg_targets = dists[torch.arange(num_pts, device=points.device), min_idx] / stride
    reg_targets = reg_targets * positive[:, None].to(dtype)
    return cls_targets, reg_targets


def assign_targets_batch(points: Sequence[torch.Tensor] | torch.Tensor,
                         gt_segments: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor],
                         num_classes: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``assign_targets`` for a batch sharing one pyramid.

    Args:
        points: list of per-level (T_l, 4) tensors, or their (N, 4) concatenation.
        gt_segments, gt_labels: one (M_b, 2) / (M_b,) tensor per video.

    Returns:
        cls_targets (B, N, C) and reg_targets (B, N, 2), N = sum of T_l.
    """
    if len(gt_segments) != len(gt_labels):
        raise ValueError(f"gt_labels: expected one tensor per video ({len(gt_segments)}), got {len(gt_labels)}")
    concat = points if isinstance(points, torch.Tensor) else torch.cat(list(points), dim=0)
    cls, reg = [], []
    for segs, labels in zip(gt_segments, gt_labels):
        c, r = assign_targets(concat, segs.to(concat.device), labels.to(concat.device), num_classes, **kwargs)
        cls.append(c)
        reg.append(r)
    return torch.stack(cls), torch.stack(reg)

"""Batched Soft-NMS over 1D segments: ``pytal.ops.soft_nms``."""
from __future__ import annotations

import math
from typing import Optional

import torch

from pytal.ops import _checks
from pytal.ops._backend import choose_backend, has_kernel, register_fake
from pytal.ops.reference import soft_nms as reference

_OP = "soft_nms"
_TOP_K_OP = "soft_nms_top_k"


def soft_nms(segments: torch.Tensor, scores: torch.Tensor, groups: Optional[torch.Tensor] = None,
             *, iou_threshold: float = 0.1, sigma: float = 0.5, min_score: float = 1e-3,
             method: str = "gaussian", max_per_group: int = -1,
             backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS of many independent groups of 1D segments in one call.

    Within each group: repeatedly select the remaining segment with the highest current score
    (ties: lower input index), emit it with that score, and multiply every remaining score by
    ``w(iou)`` with the selected segment: ``"gaussian"`` ``exp(-iou**2 / sigma)``;
    ``"linear"`` ``1 - iou`` if ``iou >= iou_threshold`` else 1; ``"hard"`` 0 if
    ``iou >= iou_threshold`` else 1. A segment whose score falls below ``min_score``
    (initially or after a decay) is dropped. IoU uses lengths ``end - start + 1e-6``.

    A batch of videos is one call with ``groups = video_index * num_classes + class``.

    Args:
        segments: (N, 2) float32 or float64, ``[start, end]`` with ``end >= start``, any unit.
        scores: (N,) same dtype and device as ``segments``; finite (NaN/inf raise ValueError).
        groups: (N,) int64 group of each candidate, or None for a single group.
        iou_threshold: in [0, 1]; used by ``"linear"`` and ``"hard"``.
        sigma: > 0; used by ``"gaussian"``.
        min_score: drop threshold.
        method: ``"gaussian"``, ``"linear"`` or ``"hard"``.
        max_per_group: at most this many selections per group; -1 for no limit.
        backend: None (extension when built for the device, else reference), ``"extension"``
            or ``"reference"``.

    Returns:
        ``(keep, new_scores)``: ``keep`` (M,) int64 input indices, groups in ascending order
        and each group in selection order; ``new_scores`` (M,) their scores at selection.
    """
    _check_args(segments, scores, groups, iou_threshold, sigma, min_score, method, max_per_group)
    return _soft_nms(segments, scores, groups, float(iou_threshold), float(sigma),
                     float(min_score), method, int(max_per_group), backend)


def _soft_nms(segments, scores, groups, iou_threshold: float, sigma: float, min_score: float,
              method: str, max_per_group: int, backend: Optional[str]):
    """:func:`soft_nms` on checked arguments."""
    if choose_backend(_OP, segments.device, backend) == "extension":
        # The kernels check the values (on CUDA read back with the number of selections, the
        # one synchronisation the op needs anyway).
        return torch.ops.pytal.soft_nms(segments, scores, groups, iou_threshold, sigma,
                                        min_score, method, max_per_group)
    _check_values(segments, scores)
    return reference.soft_nms(segments, scores, groups, iou_threshold=iou_threshold,
                              sigma=sigma, min_score=min_score, method=method,
                              max_per_group=max_per_group)


def soft_nms_top_k(segments: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                   videos: torch.Tensor, *, k: int, iou_threshold: float = 0.1,
                   sigma: float = 0.5, min_score: float = 1e-3, method: str = "gaussian",
                   backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`soft_nms` of every group, then each video's ``k`` best selections.

    Equal to ``soft_nms(..., max_per_group=k)`` followed by keeping, per video, the ``k``
    highest new scores (ties: lower group, then selection order). Where the extension has
    a ``soft_nms_top_k`` kernel for the device (CPU), the groups' selections are computed
    only as far as the videos' top ``k`` need them; elsewhere it is that composition, with
    ``soft_nms`` on the chosen backend.

    Args:
        segments, scores, iou_threshold, sigma, method, backend: as for :func:`soft_nms`.
        groups: (N,) int64; the groups of a video have higher numbers than those of every
            lower video (e.g. ``video * num_classes + class``).
        videos: (N,) int64 video of each candidate; one video per group.
        k: at most this many selections per video, >= 0.
        min_score: drop threshold, >= 0 (selected scores then never increase).

    Returns:
        ``(keep, new_scores)``: ``keep`` (M,) int64 input indices, videos ascending, each
        video's selections by new score descending; ``new_scores`` (M,) their scores.
    """
    _check_args(segments, scores, groups, iou_threshold, sigma, min_score, method, -1)
    _checks.check_tensor("videos", videos, op=_TOP_K_OP)
    _checks.check_shape("videos", videos, (segments.shape[0],),
                        f"(N,) = ({segments.shape[0]},)", op=_TOP_K_OP)
    _checks.check_dtype("videos", videos, (torch.int64,), op=_TOP_K_OP)
    _checks.check_same_device("videos", videos, "segments", segments, op=_TOP_K_OP)
    if groups is None:
        raise ValueError(f"pytal.ops.{_TOP_K_OP}: groups must be an int64 tensor of shape (N,)")
    if not float(min_score) >= 0.0:
        raise ValueError(f"pytal.ops.{_TOP_K_OP}: min_score must be >= 0, got {min_score}")
    if int(k) < 0:
        raise ValueError(f"pytal.ops.{_TOP_K_OP}: k must be >= 0, got {k}")
    if (choose_backend(_OP, segments.device, backend) == "extension"
            and has_kernel(_TOP_K_OP, segments.device.type)):
        return torch.ops.pytal.soft_nms_top_k(segments, scores, groups, videos,
                                              float(iou_threshold), float(sigma),
                                              float(min_score), method, int(k))
    keep, new_scores = _soft_nms(segments, scores, groups, float(iou_threshold), float(sigma),
                                 float(min_score), method, int(k), backend)
    top = reference.top_k_per_video(videos[keep], new_scores, int(k))
    return keep[top], new_scores[top]


def _check_args(segments, scores, groups, iou_threshold, sigma, min_score, method,
                max_per_group) -> None:
    _checks.check_tensor("segments", segments, op=_OP)
    _checks.check_tensor("scores", scores, op=_OP)
    _checks.check_shape("segments", segments, (None, 2), "(N, 2)", op=_OP)
    _checks.check_dtype("segments", segments, (torch.float32, torch.float64), op=_OP)
    n = segments.shape[0]
    _checks.check_shape("scores", scores, (n,), f"(N,) = ({n},)", op=_OP)
    _checks.check_dtype("scores", scores, (segments.dtype,), op=_OP)
    _checks.check_same_device("scores", scores, "segments", segments, op=_OP)
    if groups is not None:
        _checks.check_tensor("groups", groups, op=_OP)
        _checks.check_shape("groups", groups, (n,), f"(N,) = ({n},)", op=_OP)
        _checks.check_dtype("groups", groups, (torch.int64,), op=_OP)
        _checks.check_same_device("groups", groups, "segments", segments, op=_OP)
    _checks.check_choice("method", method, reference.METHODS, op=_OP)
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"pytal.ops.soft_nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    if not (float(sigma) > 0.0 and float(sigma) != float("inf")):
        raise ValueError(f"pytal.ops.soft_nms: sigma must be a positive number, got {sigma}")
    if not math.isfinite(float(min_score)):
        raise ValueError(f"pytal.ops.soft_nms: min_score must be finite, got {min_score}")
    if int(max_per_group) < -1:
        raise ValueError("pytal.ops.soft_nms: max_per_group must be -1 (no limit) or >= 0, "
                         f"got {max_per_group}")


def _check_values(segments, scores) -> None:
    """The values the reference does not check (the extension's kernels check them)."""
    _checks.check_finite("scores", scores, op=_OP)
    _checks.check_finite("segments", segments, op=_OP)
    if segments.shape[0] and not bool((segments[:, 1] >= segments[:, 0]).all()):
        raise ValueError("pytal.ops.soft_nms: segments must satisfy end >= start "
                         "(segments[:, 1] >= segments[:, 0])")


@register_fake(_OP)
def _soft_nms_fake(segments, scores, groups, iou_threshold, sigma, min_score, method,
                   max_per_group):
    kept = torch.library.get_ctx().new_dynamic_size()
    return segments.new_empty(kept, dtype=torch.long), scores.new_empty(kept)


@register_fake(_TOP_K_OP)
def _soft_nms_top_k_fake(segments, scores, groups, videos, iou_threshold, sigma, min_score,
                         method, k):
    kept = torch.library.get_ctx().new_dynamic_size()
    return segments.new_empty(kept, dtype=torch.long), scores.new_empty(kept)

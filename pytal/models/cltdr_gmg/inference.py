"""Inference steps of CLTDR-GMG that do not depend on the decoding op: candidate selection per
level, segments from distances, and the conversion from feature steps to seconds.

The flow (assembled in the model): per level, ``select_candidates`` on the refined scores ->
``pytal.ops.trident_decode(..., index=(b, c, t))`` for those candidates only ->
``refinement.refine_offsets`` -> ``segments_from_offsets`` -> ``drop_short`` -> concatenate the
levels -> ``pytal.postprocess.batched_nms`` for the whole batch -> ``feature_steps_to_seconds``.
"""
from __future__ import annotations

import torch

__all__ = ["select_candidates", "segments_from_offsets", "drop_short", "feature_steps_to_seconds"]


def select_candidates(scores: torch.Tensor, valid: torch.Tensor, *, threshold: float, topk: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep, independently for each video, the (step, class) entries of one level whose score
    exceeds ``threshold`` (strictly), at most ``topk`` of them, highest first.

    Args:
        scores: (B, T, C) class probabilities of one pyramid level.
        valid: (B, T) bool; padded steps are never selected.
        threshold: ``test.pre_nms_thresh``.  topk: ``test.pre_nms_topk`` (per video and level).

    Returns ``(b, t, c, score)``, each (K,): video, step, class and score of every kept entry,
    grouped by video (ascending) and by descending score within a video.
    """
    if scores.dim() != 3:
        raise ValueError(f"scores: expected shape (B, T, C), got {tuple(scores.shape)}")
    if valid.shape != scores.shape[:2]:
        raise ValueError(f"valid: expected shape {tuple(scores.shape[:2])}, got {tuple(valid.shape)}")
    if topk < 1:
        raise ValueError(f"topk: expected >= 1, got {topk}")
    batch, steps, classes = scores.shape
    flat = (scores * valid[..., None].to(scores.dtype)).reshape(batch, steps * classes)
    k = min(topk, flat.shape[1])
    if k == 0:
        empty = torch.zeros(0, dtype=torch.long, device=scores.device)
        return empty, empty, empty, scores.new_zeros(0)
    top, idx = flat.topk(k, dim=1, sorted=True)
    keep = top > threshold
    b = torch.arange(batch, device=scores.device)[:, None].expand(batch, k)[keep]
    idx = idx[keep]
    return b, idx // classes, idx % classes, top[keep]


def segments_from_offsets(positions: torch.Tensor, offsets: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Segments ``[t - left * s, t + right * s]`` in input feature steps from (K,) point positions
    ``t``, (K, 2) distances in strides and (K,) (or scalar) strides ``s``. -> (K, 2)."""
    if offsets.shape != positions.shape + (2,):
        raise ValueError(f"offsets: expected shape {tuple(positions.shape) + (2,)}, got {tuple(offsets.shape)}")
    return torch.stack((positions - offsets[..., 0] * strides, positions + offsets[..., 1] * strides), dim=-1)


def drop_short(segments: torch.Tensor, min_length: float) -> torch.Tensor:
    """Bool (K,) mask of the segments longer than ``min_length`` (``test.duration_thresh``, in
    input feature steps)."""
    return (segments[..., 1] - segments[..., 0]) > min_length


def feature_steps_to_seconds(segments: torch.Tensor, *, fps: float, feat_stride: float,
                             num_frames: float, duration: float) -> torch.Tensor:
    """Input feature steps -> seconds: feature ``i`` is centred at
    ``(i * feat_stride + num_frames / 2) / fps``; the result is clipped to ``[0, duration]``."""
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    seconds = (segments * feat_stride + 0.5 * num_frames) / fps
    return seconds.clamp(min=0.0, max=float(duration))

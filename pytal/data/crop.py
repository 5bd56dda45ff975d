"""Random temporal crops for training (ActionFormer's ``truncate_feats``, with an explicit RNG).

Everything here is in feature steps.
"""
from __future__ import annotations

from typing import Optional

import torch


def _randint(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """Uniform integer in [low, high] (both inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def crop_length(feat_len: int, *, max_seq_len: Optional[int],
                crop_ratio: Optional[tuple[float, float]],
                generator: Optional[torch.Generator] = None) -> int:
    """Length of the training window for a sequence of ``feat_len`` steps.

    Longer than ``max_seq_len``: ``max_seq_len``. Otherwise, with ``crop_ratio = (lo, hi)``, a
    random length in ``[max(round(lo * T), 1), min(round(hi * T), T)]``; else ``T`` (no crop).
    """
    if max_seq_len is not None and feat_len > max_seq_len:
        return max_seq_len
    if crop_ratio is None:
        return feat_len
    lo = max(round(crop_ratio[0] * feat_len), 1)
    hi = min(round(crop_ratio[1] * feat_len), feat_len)
    return _randint(lo, max(lo, hi), generator)


def clip_to_window(segments: torch.Tensor, start: int, end: int, *, offset: float,
                   trunc_thresh: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip segments (N, 2) to the window ``[start - offset, end + offset]`` (steps).

    Returns ``(clipped (N, 2) relative to start, keep (N,) bool)``: a segment is kept when the
    clipped part is at least ``trunc_thresh`` of its length (zero-length segments never are).
    """
    left = torch.clamp(segments[:, 0], min=start - offset)
    right = torch.clamp(segments[:, 1], max=end + offset)
    inter = (right - left).clamp(min=0)
    length = (segments[:, 1] - segments[:, 0]).abs()
    keep = inter >= trunc_thresh * length
    keep &= length > 0
    return torch.stack([left, right], dim=1) - start, keep


def random_crop(feat_len: int, segments: torch.Tensor, *, window: int, offset: float,
                trunc_thresh: float, max_trials: int = 200,
                generator: Optional[torch.Generator] = None
                ) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Pick a window of ``window`` steps that keeps at least one action when possible.

    Tries up to ``max_trials`` uniformly placed windows and stops at the first one where some
    segment keeps ``trunc_thresh`` of its length (the last try is used otherwise).

    Returns ``(start, segments (M, 2) relative to start, keep (N,) bool)``.
    """
    for _ in range(max_trials):
        start = _randint(0, feat_len - window, generator)
        clipped, keep = clip_to_window(segments, start, start + window, offset=offset,
                                       trunc_thresh=trunc_thresh)
        if bool(keep.any()):
            break
    return start, clipped[keep], keep

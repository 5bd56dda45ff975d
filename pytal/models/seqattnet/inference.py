"""Candidate proposals of SeqAttNet (paper section 3.6), for a batch, in feature steps.

A step is a start (end) candidate when its start (end) probability is a local peak or at
least ``peak_ratio`` times the video's largest. Every valid map proposal (d, t) =
``[t, t + d + 1]`` whose start and end are candidates is scored with BMN's fusion
``P = p_s(t) * p_e(t + d + 1) * M_CR(d, t) * M_CC(d, t)``; the ``max_candidates`` best of
each video are kept.
"""
from __future__ import annotations

import torch

__all__ = ["boundary_candidates", "select_proposals"]


def boundary_candidates(prob: torch.Tensor, peak_ratio: float) -> torch.Tensor:
    """(B, T) probabilities -> (B, T) bool: local peaks or ``>= peak_ratio * max``."""
    left = torch.nn.functional.pad(prob[:, :-1], (1, 0), value=float("-inf"))
    right = torch.nn.functional.pad(prob[:, 1:], (0, 1), value=float("-inf"))
    peak = (prob > left) & (prob > right)
    return peak | (prob >= peak_ratio * prob.amax(dim=1, keepdim=True))


def select_proposals(boundaries: torch.Tensor, maps: torch.Tensor, valid: torch.Tensor, *,
                     peak_ratio: float, max_candidates: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(video (K,), proposals (K, 2) [start, end] steps, P (K,))``.

    Args:
        boundaries: (B, 2, T) start and end probabilities.
        maps: (B, 2, D, T) confidence maps ``[M_CR, M_CC]``.
        valid: (D, T) bool, the proposals inside the sequence.
    """
    b, _, d_bins, t_len = maps.shape
    start, end = boundaries[:, 0], boundaries[:, 1]
    end_step = (torch.arange(t_len, device=maps.device)[None, :]
                + torch.arange(d_bins, device=maps.device)[:, None] + 1).clamp(max=t_len - 1)
    is_start = boundary_candidates(start, peak_ratio)[:, None, :]           # (B, 1, T)
    is_end = boundary_candidates(end, peak_ratio)[:, end_step]             # (B, D, T)
    chosen = is_start & is_end & valid[None]
    score = start[:, None, :] * end[:, end_step] * maps[:, 0] * maps[:, 1]  # (B, D, T)
    score = torch.where(chosen, score, torch.full_like(score, -1.0)).flatten(1)
    k = min(max_candidates, score.shape[1])
    top, index = score.topk(k, dim=1)
    keep = top >= 0
    video = torch.arange(b, device=maps.device)[:, None].expand(b, k)[keep]
    index = index[keep]
    d, t = index // t_len, index % t_len
    proposals = torch.stack((t, t + d + 1), dim=1).to(maps.dtype)
    return video, proposals, top[keep]

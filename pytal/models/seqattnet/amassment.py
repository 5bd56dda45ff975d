"""3D input amassment (paper section 3.2): the features inside each proposal, aligned along
time from the proposal's first step and zero-padded to T_p steps, for many proposals of many
videos in one gather.

A proposal ``[start, end]`` (feature steps) covers the steps ``round(start) .. round(end)``
clamped to ``[0, T - 1]`` (at least one step); steps beyond T_p are dropped.
"""
from __future__ import annotations

import torch

__all__ = ["amass", "proposal_steps"]


def proposal_steps(proposals: torch.Tensor, temporal_scale: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, count)``, each (P,) int64: first step and number of steps of (P, 2) proposals."""
    first = proposals[:, 0].round().long().clamp(0, temporal_scale - 1)
    last = proposals[:, 1].round().long().clamp(0, temporal_scale - 1)
    return first, (last - first).clamp(min=0) + 1


def amass(feats: torch.Tensor, video: torch.Tensor, proposals: torch.Tensor,
          length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3D input ``X`` (P, F, T_p) and its valid steps (P, T_p) bool.

    Args:
        feats: (B, F, T) features.
        video: (P,) int64 video of each proposal.
        proposals: (P, 2) ``[start, end]`` in feature steps.
        length: T_p.
    """
    b, f, t = feats.shape
    first, count = proposal_steps(proposals, t)
    offsets = torch.arange(length, device=feats.device)
    valid = offsets[None, :] < count[:, None]                             # (P, T_p)
    index = (first[:, None] + offsets[None, :]).clamp(max=t - 1)          # (P, T_p)
    x = feats.transpose(1, 2)[video[:, None], index]                      # (P, T_p, F)
    x = x * valid[..., None].to(x.dtype)
    return x.transpose(1, 2), valid

"""3D input amassment (paper section 3.2): the features inside each proposal, aligned along
time from the proposal's first step and zero-padded to T_p steps, for many proposals of many
videos in one gather.

A proposal ``[start, end]`` (feature steps) covers the steps ``round(start) .. round(end)``
clamped to ``[0, T - 1]`` (at least one step); steps beyond T_p are dropped.

Most proposals are much shorter than T_p, and the heads' cost grows with the square of the
input's length, so :func:`amass_groups` gives the 3D input of proposals grouped by length,
each group padded only to its own longest (rounded up to a multiple of ``GROUP_STEPS``).
"""
from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["GROUP_STEPS", "amass", "amass_groups", "proposal_steps"]

#: The lengths of :func:`amass_groups`' inputs are multiples of this (or T_p).
GROUP_STEPS = 16


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


def amass_groups(feats: torch.Tensor, video: torch.Tensor, proposals: torch.Tensor,
                 length: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The 3D input of :func:`amass` by groups of proposals of similar length: yields
    ``(index (G,), X (G, F, L), valid (G, L))`` where ``index`` are the group's rows in
    ``proposals`` and X, valid are ``amass(feats, video, proposals, length)[index]`` without
    their last ``length - L`` steps, which are padding for every proposal of the group
    (L: the group's step count rounded up to a multiple of ``GROUP_STEPS``, at most
    ``length``). The groups cover every proposal once; at most ``ceil(length /
    GROUP_STEPS)`` groups.
    """
    _, count = proposal_steps(proposals, feats.shape[2])
    group = (count.clamp(max=length) + GROUP_STEPS - 1) // GROUP_STEPS
    for g in torch.unique(group).tolist():
        index = (group == g).nonzero(as_tuple=True)[0]
        x, valid = amass(feats, video[index], proposals[index], min(g * GROUP_STEPS, length))
        yield index, x, valid

"""Training labels of SeqAttNet (paper section 3.7.1), one video at a time, in feature steps.

* Boundary labels ``G_S``, ``G_E`` (T,): for ground truth ``[t_s, t_e]`` of length
  ``d_g = t_e - t_s``, the start region ``[t_s - d_g / 10, t_s + d_g / 10]`` (end likewise);
  each step n has the region ``[n - d_f / 10, n + d_f / 10]`` with ``d_f = 1`` step;
  ``g_n`` is the largest intersection-over-region (intersection / length of the step's
  region) over the ground truths.
* IoU map ``G_C`` (D, T): the largest IoU of proposal (d, t) = ``[t, t + d + 1]`` with a
  ground truth.
* Error targets of a proposal ``[t_is, t_ie]`` matched to ground truth ``[t_gs, t_ge]``:
  ``ds = (t_gs - t_is) / T``, ``de = (t_ge - t_ie) / T``.
"""
from __future__ import annotations

import torch

__all__ = ["BOUNDARY_RATIO", "STEP_RATIO", "boundary_labels", "error_targets", "iou_map",
           "segment_iou"]

#: Half-width of a ground truth's start / end region, in units of its length.
BOUNDARY_RATIO = 0.1
#: Half-width of a step's region, in steps (``d_f / 10``).
STEP_RATIO = 0.1


def boundary_labels(segments: torch.Tensor, temporal_scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G_S, G_E)``, each (T,) in [0, 1], from (N, 2) ground-truth segments in steps."""
    steps = torch.arange(temporal_scale, dtype=segments.dtype, device=segments.device)
    lo, hi = steps - STEP_RATIO, steps + STEP_RATIO                      # (T,)
    if segments.numel() == 0:
        zeros = steps.new_zeros(temporal_scale)
        return zeros, zeros.clone()
    half = BOUNDARY_RATIO * (segments[:, 1] - segments[:, 0]).clamp(min=0)  # (N,)

    def labels(centre: torch.Tensor) -> torch.Tensor:
        inter = (torch.minimum(hi[:, None], (centre + half)[None])
                 - torch.maximum(lo[:, None], (centre - half)[None])).clamp(min=0)
        return (inter / (hi - lo)[:, None]).amax(dim=1)

    return labels(segments[:, 0]), labels(segments[:, 1])


def segment_iou(proposals: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """(P, N) IoU of (P, 2) proposals with (N, 2) segments (0 for an empty union)."""
    inter = (torch.minimum(proposals[:, None, 1], segments[None, :, 1])
             - torch.maximum(proposals[:, None, 0], segments[None, :, 0])).clamp(min=0)
    union = ((proposals[:, 1] - proposals[:, 0])[:, None]
             + (segments[:, 1] - segments[:, 0])[None] - inter)
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def map_proposals(temporal_scale: int, duration_bins: int, *, dtype=torch.float32,
                  device=None) -> torch.Tensor:
    """(D, T, 2) ``[t, t + d + 1]``: the proposals of the confidence maps, in steps."""
    d = torch.arange(duration_bins, dtype=dtype, device=device)[:, None]
    t = torch.arange(temporal_scale, dtype=dtype, device=device)[None, :]
    t = t.expand(duration_bins, temporal_scale)
    return torch.stack((t, t + d + 1), dim=-1)


def iou_map(segments: torch.Tensor, temporal_scale: int, duration_bins: int) -> torch.Tensor:
    """``G_C`` (D, T): the largest IoU of each map proposal with the (N, 2) segments."""
    props = map_proposals(temporal_scale, duration_bins, dtype=segments.dtype,
                          device=segments.device)
    if segments.numel() == 0:
        return props.new_zeros(duration_bins, temporal_scale)
    return segment_iou(props.view(-1, 2), segments).amax(dim=1).view(duration_bins,
                                                                        temporal_scale)


def error_targets(proposals: torch.Tensor, matched: torch.Tensor,
                  temporal_scale: int) -> torch.Tensor:
    """(P, 2) ``(ds, de)``: matched ground truth (P, 2) minus proposals (P, 2), over T."""
    return (matched - proposals) / temporal_scale

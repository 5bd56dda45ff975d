"""TAL-MTS training losses (paper eq. 7-12):
``L = L_cls^c + L_cls^r + alpha (L_loc^c + L_loc^r) + beta L_bce``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pytal.models.common import ctr_giou_loss_1d, sigmoid_focal_loss

__all__ = ["refined_targets", "segment_iou", "talmts_losses"]


def segment_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching segments (..., 2) and (..., 2) ``[start, end]`` -> (...)."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return inter / union.clamp(min=1e-8)


def refined_targets(coarse: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Offsets (N, 2) that move coarse proposals (N, 2) onto ground truth (N, 2) by eq. 13:
    ``gt = coarse + d * delta / 2`` with ``d`` the coarse length."""
    d = (coarse[:, 1] - coarse[:, 0]).clamp(min=1e-3)
    return 2.0 * (gt - coarse) / d[:, None]


def talmts_losses(*, cls_logits: torch.Tensor, distances: torch.Tensor, positions: torch.Tensor,
                  strides: torch.Tensor, valid: torch.Tensor, cls_targets: torch.Tensor,
                  reg_targets: torch.Tensor, refined_offsets: torch.Tensor,
                  refined_logits: torch.Tensor, quality: torch.Tensor, alpha: float,
                  beta: float, refine_iou: float, focal_alpha: float = 0.25,
                  focal_gamma: float = 2.0) -> dict[str, torch.Tensor]:
    """All terms for K positions of B clips.

    Args:
        cls_logits, refined_logits: (B, K, C). distances: (B, K, 2) predicted (start, end)
            distances in frames. positions, strides: (K,) frames. valid: (B, K) bool.
        cls_targets: (B, K, C) 0/1; reg_targets: (B, K, 2) target distances in strides
            (:func:`pytal.models.common.assign_targets_batch`; positives: non-zero rows).
        refined_offsets: (B, K, 2); quality: (B, K) logits.

    Coarse positives (N^c): points inside a ground truth; refined positives (N^r): coarse
    positives whose proposal has tIoU > ``refine_iou`` with its ground truth. Focal losses are
    summed over valid positions and divided by N^c / N^r; GIoU, smooth L1 and the BCE of the
    quality against the refined proposal's IoU are averaged over the coarse positives (as
    AFSD's losses are).
    """
    positive = (cls_targets.sum(-1) > 0) & valid
    n_c = max(int(positive.sum()), 1)
    pos = positions[None].expand_as(valid)[positive]
    stride = strides[None].expand_as(valid)[positive]
    dist = distances[positive]
    coarse = torch.stack((pos - dist[:, 0], pos + dist[:, 1]), dim=-1)
    target_dist = reg_targets[positive] * stride[:, None]
    gt = torch.stack((pos - target_dist[:, 0], pos + target_dist[:, 1]), dim=-1)

    cls_c = sigmoid_focal_loss(cls_logits[valid], cls_targets[valid], alpha=focal_alpha,
                               gamma=focal_gamma, reduction="sum") / n_c
    loc_c = ctr_giou_loss_1d(dist / stride[:, None], reg_targets[positive],
                             reduction="sum") / n_c

    coarse_d = coarse.detach()
    iou_c = segment_iou(coarse_d, gt)
    good = iou_c > refine_iou
    n_r = max(int(good.sum()), 1)
    refined_t = torch.zeros_like(cls_targets)
    refined_t[positive] = cls_targets[positive] * good[:, None].to(cls_targets.dtype)
    cls_r = sigmoid_focal_loss(refined_logits[valid], refined_t[valid], alpha=focal_alpha,
                               gamma=focal_gamma, reduction="sum") / n_r
    offsets = refined_offsets[positive]
    loc_r = F.smooth_l1_loss(offsets.float(), refined_targets(coarse_d, gt).float(),
                             reduction="sum") / n_c
    d = (coarse_d[:, 1] - coarse_d[:, 0])[:, None]
    refined = coarse_d + 0.5 * d * offsets.detach()
    iou_r = segment_iou(refined, gt)
    bce = F.binary_cross_entropy_with_logits(quality[positive].float(), iou_r.float(),
                                             reduction="sum") / n_c
    loss = cls_c + cls_r + alpha * (loc_c + loc_r) + beta * bce
    return {"loss": loss, "cls_coarse": cls_c, "cls_refined": cls_r, "loc_coarse": loc_c,
            "loc_refined": loc_r, "quality": bce}

"""How the RefineHead's outputs modify the coarse predictions, for both variants.

Scores: the paper combines the classification probability ``a = sigmoid(cls_logit)`` with the
refinement probability ``R = sigmoid(refine_logit)`` as ``sqrt(a * R)``; the public code
multiplies the two *logits* and applies one sigmoid: ``sigmoid(cls_logit * refine_logit)``.

Boundaries (both variants, as the public code): with decoded distances ``(l, r)`` in strides at a
point ``t`` of stride ``s`` and per-class offsets ``(ds, de)`` in input feature steps, the refined
segment is ``[t - l*s + ds, t + r*s + de]``, i.e. distances ``(max(l - ds/s, 0), max(r + de/s, 0))``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["VARIANTS", "refined_logits", "refined_scores", "refine_offsets"]

VARIANTS = ("paper", "release")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")


def refined_logits(cls_logits: torch.Tensor, refine_logits: torch.Tensor, variant: str) -> torch.Tensor:
    """Logit of the refined score (what the refined classification loss sees), any shape.

    ``release``: ``cls_logits * refine_logits``. ``paper``: ``logit(sqrt(a * R))``, computed in
    log space so it stays finite for large logits.
    """
    _check_variant(variant)
    if cls_logits.shape != refine_logits.shape:
        raise ValueError(f"refine_logits: expected shape {tuple(cls_logits.shape)}, got {tuple(refine_logits.shape)}")
    if variant == "release":
        return cls_logits * refine_logits
    log_s = 0.5 * (F.logsigmoid(cls_logits.float()) + F.logsigmoid(refine_logits.float()))
    log_s = log_s.clamp(max=-1e-7)                  # s < 1 so that log(1 - s) is finite
    return (log_s - torch.log(-torch.expm1(log_s))).to(cls_logits.dtype)


def refined_scores(cls_logits: torch.Tensor, refine_logits: torch.Tensor, variant: str) -> torch.Tensor:
    """Refined class probability in [0, 1]: ``sqrt(a * R)`` (paper) or
    ``sigmoid(cls_logits * refine_logits)`` (release)."""
    _check_variant(variant)
    if variant == "release":
        return torch.sigmoid(refined_logits(cls_logits, refine_logits, variant))
    return torch.sqrt(torch.sigmoid(cls_logits) * torch.sigmoid(refine_logits))


def refine_offsets(offsets: torch.Tensor, start_offset: torch.Tensor, end_offset: torch.Tensor,
                   stride: torch.Tensor | float) -> torch.Tensor:
    """Apply the RefineHead's boundary offsets to decoded distances.

    Args:
        offsets: (..., 2) decoded (left, right) distances in strides (trident_decode output).
        start_offset, end_offset: (...) boundary offsets in input feature steps.
        stride: stride of each point, broadcastable to (...), input feature steps.

    Returns: (..., 2) refined non-negative distances in strides.
    """
    if offsets.shape[-1] != 2:
        raise ValueError(f"offsets: expected a last dimension of 2, got {tuple(offsets.shape)}")
    if start_offset.shape != offsets.shape[:-1] or end_offset.shape != offsets.shape[:-1]:
        raise ValueError(f"start_offset/end_offset: expected shape {tuple(offsets.shape[:-1])}, "
                         f"got {tuple(start_offset.shape)} and {tuple(end_offset.shape)}")
    left = (offsets[..., 0] - start_offset / stride).clamp(min=0)
    right = (offsets[..., 1] + end_offset / stride).clamp(min=0)
    return torch.stack((left, right), dim=-1)

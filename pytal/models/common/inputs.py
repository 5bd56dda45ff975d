"""The check every detector runs on its inputs before the first layer."""
from __future__ import annotations

import torch

__all__ = ["check_feats_and_masks"]


def check_feats_and_masks(owner: str, feats: torch.Tensor, masks: torch.Tensor,
                          input_dim: int) -> None:
    """Raise ``ValueError`` (prefixed ``owner``) unless ``feats`` is a floating (B, input_dim, T)
    tensor and ``masks`` a (B, 1, T) bool tensor on the same device."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 3 or feats.shape[1] != input_dim:
        got = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{owner}: feats must be a (B, {input_dim}, T) float tensor "
                         f"(dataset.input_dim = {input_dim}), got {got}")
    if not feats.is_floating_point():
        raise ValueError(f"{owner}: feats must be floating point, got {feats.dtype}")
    b, _, t = feats.shape
    if (not isinstance(masks, torch.Tensor) or masks.shape != (b, 1, t)
            or masks.dtype != torch.bool):
        raise ValueError(f"{owner}: masks must be a (B, 1, T) = {(b, 1, t)} bool tensor, got "
                         f"{getattr(masks, 'dtype', type(masks).__name__)} "
                         f"{tuple(getattr(masks, 'shape', ()))}")
    if masks.device != feats.device:
        raise ValueError(f"{owner}: masks must be on the device of feats ({feats.device}), "
                         f"got {masks.device}")

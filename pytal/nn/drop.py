"""Stochastic depth (drop path) for residual branches of (B, C, T) sequence models."""
from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zeroes whole samples of ``x`` (dimension 0) with probability ``drop_prob`` in training
    and scales the kept ones by ``1 / (1 - drop_prob)``; the identity otherwise."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    kept = torch.floor(keep + torch.rand(shape, dtype=x.dtype, device=x.device))
    return x / keep * kept


class AffineDropPath(nn.Module):
    """``drop_path(scale * x)`` with a learned per-channel ``scale`` of shape (1, C, 1),
    initialised to ``init_scale`` (LayerScale, Touvron et al. 2021, with stochastic depth)."""

    def __init__(self, num_channels: int, drop_prob: float = 0.0,
                 init_scale: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, num_channels, 1), float(init_scale)))
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T)."""
        return drop_path(self.scale * x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"

"""Normalisation layers for (B, C, T) feature sequences."""
from __future__ import annotations

import torch
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of a (B, C, T) tensor, at every time step.

    ``y = (x - mean_C(x)) / sqrt(var_C(x) + eps) * weight + bias`` with the biased variance.
    Parameters ``weight`` and ``bias`` have shape (1, C, 1) (the layout of ActionFormer-style
    checkpoints, so their state dicts load unchanged); ``affine=False`` has none.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
            self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, C, T)."""
        if x.dim() != 3 or x.shape[1] != self.num_channels:
            raise ValueError(f"ChannelLayerNorm: x must have shape (B, {self.num_channels}, T), "
                             f"got {tuple(x.shape)}")
        centred = x - x.mean(dim=1, keepdim=True)
        out = centred / torch.sqrt(centred.pow(2).mean(dim=1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.weight is not None}"

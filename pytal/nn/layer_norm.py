"""LayerNorm over the channel dimension of (B, C, T) tensors."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelLayerNorm"]


class ChannelLayerNorm(nn.Module):
    """Normalises each time step over its C channels (biased variance, ``eps`` inside the square
    root), then applies a per-channel affine map.

    Parameters ``weight`` and ``bias`` have shape (1, C, 1), matching the ``LayerNorm`` of the
    public ActionFormer-family code so checkpoints load unchanged.

    Shapes: x (B, C, T) -> (B, C, T).
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
        if x.dim() != 3 or x.shape[1] != self.num_channels:
            raise ValueError(f"x: expected shape (B, {self.num_channels}, T), got {tuple(x.shape)}")
        mu = x.mean(dim=1, keepdim=True)
        centred = x - mu
        var = centred.pow(2).mean(dim=1, keepdim=True)
        out = centred / torch.sqrt(var + self.eps)
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out

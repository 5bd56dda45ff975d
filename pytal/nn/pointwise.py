"""Pointwise (kernel 1) convolutions over (B, C, T) sequences: a per-step matrix product
``out[b, :, t] = W @ x[b, :, t] + bias`` over the B*T steps.

On the CPU, ATen sends a float32 kernel-1 convolution of fewer than 16 sequences in a
single-threaded process to its generic path (one BLAS ``gemm`` per sequence: the same work as
a matmul over the (B*T, C) steps) rather than to oneDNN, whose kernels are the faster ones,
forward and backward, where the BLAS is not tuned for the CPU (MKL on AMD processors). A
dilation other than 1 makes ATen choose oneDNN, and for a kernel of size 1 it changes nothing
in the result, so :func:`pointwise_conv1d` passes one there. Elsewhere (CUDA, other dtypes) it
is a plain ``conv1d``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PointwiseConv1d", "pointwise_conv1d"]

_ONEDNN_DTYPES = (torch.float32,)


def pointwise_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                     groups: int = 1) -> torch.Tensor:
    """``conv1d(x, weight, bias, groups=groups)`` for a kernel of size 1.

    Args: x (B, C_in, T); weight (C_out, C_in / groups, 1); bias (C_out,) or None.
    Returns: (B, C_out, T), equal to ``F.conv1d`` up to float rounding.
    """
    if weight.dim() != 3 or weight.shape[-1] != 1:
        raise ValueError(f"pointwise_conv1d: weight must have shape (C_out, C_in / groups, 1), "
                         f"got {tuple(weight.shape)}")
    if (x.device.type == "cpu" and x.dtype in _ONEDNN_DTYPES and x.dim() == 3
            and torch.backends.mkldnn.is_available()):
        return F.conv1d(x, weight, bias, groups=groups, dilation=2)
    return F.conv1d(x, weight, bias, groups=groups)


class PointwiseConv1d(nn.Conv1d):
    """``nn.Conv1d(in_channels, out_channels, 1, groups=groups, bias=bias)`` (same parameters,
    names and shapes, so state dicts of a ``Conv1d`` load unchanged) whose forward is
    :func:`pointwise_conv1d`. (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, in_channels: int, out_channels: int, *, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv1d(x, self.weight, self.bias, self.groups)

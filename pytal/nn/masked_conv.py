"""Masked 1D convolution: a ``Conv1d`` whose output is zeroed where the (propagated) mask is False."""
from __future__ import annotations

import torch
from torch import nn

from pytal.nn.float32 import Float32Conv1d

__all__ = ["MaskedConv1D", "downsample_mask", "valid_extent"]


def downsample_mask(mask: torch.Tensor, stride: int, out_len: int) -> torch.Tensor:
    """Nearest-neighbour downsampling of a (B, 1, T) bool mask: output step i reads input step
    ``i * stride``. The result has exactly ``out_len`` steps (missing steps read as False).

    For ``T`` divisible by ``stride`` this equals ``F.interpolate(mask, size=T // stride,
    mode="nearest")``, the rule of ActionFormer/TriDet/CLTDR-GMG.
    """
    if mask.dim() != 3 or mask.shape[1] != 1:
        raise ValueError(f"mask: expected shape (B, 1, T), got {tuple(mask.shape)}")
    if stride < 1:
        raise ValueError(f"stride: expected a positive integer, got {stride}")
    out = mask[..., ::stride][..., :out_len]
    if out.shape[-1] < out_len:
        pad = out.new_zeros(out.shape[:-1] + (out_len - out.shape[-1],))
        out = torch.cat([out, pad], dim=-1)
    return out


def valid_extent(mask: torch.Tensor) -> int:
    """Steps up to and including the last True step of a (B, 1, T) bool mask, over the batch:
    every step from there on is padding in every sequence (0 for an all-False mask)."""
    if mask.dim() != 3 or mask.shape[1] != 1:
        raise ValueError(f"mask: expected shape (B, 1, T), got {tuple(mask.shape)}")
    steps = mask.any(dim=0)[0].nonzero()
    return int(steps[-1, 0]) + 1 if steps.numel() else 0


class MaskedConv1D(nn.Module):
    """``Conv1d`` with "same" padding (odd kernel, ``padding = kernel_size // 2``) followed by
    multiplication with the mask, so padded steps of the output are exactly zero.

    The bias (if any) is initialised to zero. The wrapped convolution is ``self.conv`` (the
    parameter names ``conv.weight`` / ``conv.bias`` match the public ActionFormer-family code).

    Args:
        in_channels, out_channels, kernel_size, stride, groups, bias: as for ``nn.Conv1d``.
        float32_output: under ``torch.autocast``, compute in float32 anyway (``self.conv`` is a
            :class:`~pytal.nn.Float32Conv1d`): for output layers whose values are ranked or
            thresholded (a bfloat16 logit keeps 8 bits, so close scores would tie).

    Shapes:
        x (B, C_in, T), mask (B, 1, T) bool -> out (B, C_out, T_out), out_mask (B, 1, T_out) bool,
        with ``T_out = ceil(T / stride)`` (``T // stride`` when divisible).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = True, float32_output: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size: expected an odd number, got {kernel_size}")
        if stride < 1:
            raise ValueError(f"stride: expected a positive integer, got {stride}")
        self.stride = stride
        conv = Float32Conv1d if float32_output else nn.Conv1d
        self.conv = conv(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, groups=groups, bias=bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3:
            raise ValueError(f"x: expected shape (B, C, T), got {tuple(x.shape)}")
        if mask.shape != (x.shape[0], 1, x.shape[-1]):
            raise ValueError(f"mask: expected shape {(x.shape[0], 1, x.shape[-1])} (B, 1, T), "
                             f"got {tuple(mask.shape)}")
        out = self.conv(x)
        out_mask = mask if self.stride == 1 else downsample_mask(mask, self.stride, out.shape[-1])
        out = out * out_mask.to(out.dtype)
        return out, out_mask.bool()

"""The GMG encoder (projection, GMG stem, GMG pyramid branch) and the neck of CLTDR-GMG.

Units: T in input feature steps; level ``l`` has ``T / scale_factor**l`` steps.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models.common.heads import ConvTower
from pytal.nn import ChannelLayerNorm, GMGBlock

__all__ = ["GMGEncoder", "PyramidNorm", "sinusoid_position_embedding"]


def sinusoid_position_embedding(length: int, channels: int) -> torch.Tensor:
    """Transformer sinusoid table (Vaswani et al.), channel ``2i`` = ``sin(t / 10000**(2i/C))``,
    ``2i+1`` = ``cos`` of the same angle, scaled by ``1 / sqrt(C)``. -> (1, C, length) float32."""
    t = torch.arange(length, dtype=torch.float64)[:, None]
    pair = torch.arange(channels, dtype=torch.float64) // 2
    angle = t / torch.pow(10000.0, 2.0 * pair / channels)[None]
    table = torch.where(torch.arange(channels) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return (table / math.sqrt(channels)).T[None].float()


class GMGEncoder(nn.Module):
    """Projection (``arch[0]`` masked convs + optional channel LayerNorm + ReLU), optional
    absolute position embedding, ``arch[1]`` GMG stem blocks (local kernel 1, no downsampling,
    no drop path, as the public code) and ``arch[2]`` GMG branch blocks that each downsample
    by ``scale_factor`` (max-pool) and emit one pyramid level.

    Submodules: ``embed`` (ConvTower), ``stem.<i>``, ``branch.<i>`` (``pytal.nn.GMGBlock``).

    Args: see the ``model.*`` keys of ``pytal/configs/cltdr_gmg_*.yaml``; ``gating``: "paper" or
    "release" (``pytal.ops.gmg``); ``max_len``: length of the position-embedding table.

    ``forward(x (B, C_in, T), mask (B, 1, T) bool, extent=None)`` with T divisible by
    ``scale_factor ** arch[2]`` -> (feats, masks): lists over the ``arch[2] + 1`` levels of
    (B, embd_dim, T_l) and (B, 1, T_l) bool. ``extent`` (``pytal.nn.valid_extent(mask)``):
    the projection runs on the first ``extent`` steps only (``ConvTower.forward_prefix``,
    same result); the GMG blocks always see all T steps (their spectral filter and GroupNorm
    read the padding too).
    """

    def __init__(self, input_dim: int, embd_dim: int, arch: Sequence[int], *, scale_factor: int = 2,
                 embd_kernel_size: int = 3, embd_with_ln: bool = True, kernel_size: int = 1,
                 mlp_dim: int | None = None, init_conv_vars: float = 0.0, path_pdrop: float = 0.0,
                 downsample_type: str = "max", gating: str = "paper", use_abs_pe: bool = False,
                 max_len: int = 0) -> None:
        super().__init__()
        self.embed = ConvTower(input_dim, embd_dim, arch[0], embd_kernel_size, embd_with_ln)
        self.stem = nn.ModuleList(
            GMGBlock(embd_dim, 1, 1, n_hidden=mlp_dim, init_conv_vars=init_conv_vars,
                     gating=gating) for _ in range(arch[1]))
        self.branch = nn.ModuleList(
            GMGBlock(embd_dim, kernel_size, scale_factor, n_hidden=mlp_dim, path_pdrop=path_pdrop,
                     downsample_type=downsample_type, init_conv_vars=init_conv_vars, gating=gating)
            for _ in range(arch[2]))
        self.use_abs_pe = use_abs_pe
        if use_abs_pe:
            if max_len < 1:
                raise ValueError(f"GMGEncoder: max_len must be >= 1 with use_abs_pe, got {max_len}")
            self.register_buffer("pos_embd", sinusoid_position_embedding(max_len, embd_dim),
                                 persistent=False)
        for module in self.modules():        # zero conv biases (the public code's init)
            if isinstance(module, (nn.Conv1d, nn.Linear)) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def position_embedding(self, length: int) -> torch.Tensor:
        """(1, C, length): the table's first ``length`` steps, linearly resampled to
        ``length`` when the sequence is longer than the table (inference only)."""
        table = self.pos_embd
        if length > table.shape[-1]:
            if self.training:
                raise ValueError(f"GMGEncoder: T = {length} exceeds the position-embedding "
                                 f"length {table.shape[-1]} (dataset.max_seq_len) in training")
            table = F.interpolate(table, size=length, mode="linear", align_corners=False)
        return table[..., :length]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, extent: int | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        x = self.embed(x, mask) if extent is None else self.embed.forward_prefix(x, mask, extent)
        if self.use_abs_pe:
            x = x + self.position_embedding(x.shape[-1]).to(x.dtype) * mask.to(x.dtype)
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


class PyramidNorm(nn.Module):
    """The neck: a channel LayerNorm per level (identity when ``with_ln`` is False), the
    public code's "identity" FPN. Submodules ``norms.<l>``. Lists of (B, C, T_l) -> same."""

    def __init__(self, channels: int, num_levels: int, with_ln: bool = True) -> None:
        super().__init__()
        self.norms = nn.ModuleList(ChannelLayerNorm(channels) if with_ln else nn.Identity()
                                   for _ in range(num_levels))

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.norms):
            raise ValueError(f"PyramidNorm: expected {len(self.norms)} levels, got {len(feats)}")
        return [norm(f) for norm, f in zip(self.norms, feats)]

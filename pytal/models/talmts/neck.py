"""TAL-MTS features: the six-level pyramid, the refined feature pyramids (RFP), the
spatial-temporal transformer (STT) and the frame-level self attention (FSA).

Layouts: maps (B, C, T', S, S); sequences (B, C, T_l); level ``l`` has T/4 / 2**l steps for a
clip of T frames (stride 4 * 2**l frames).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FrameSelfAttention", "Pyramid", "SpatialTemporalTransformer", "frame_level_feature",
           "refine_pyramid"]

NUM_LEVELS = 6


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups at 512 channels (AFSD's) and at least 16 channels per group."""
    return nn.GroupNorm(math.gcd(32, max(1, channels // 16)), channels)


def _conv1d(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, 3, stride, 1), _norm(cout), nn.ReLU(inplace=True))


def _encoder(dim: int, heads: int, layers: int) -> nn.TransformerEncoder:
    """Pre-LN transformer encoder (LN before each MSA and MLP block)."""
    layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class Pyramid(nn.Module):
    """Mixed_4f-like (B, C4, T/4, S4, S4) and Mixed_5c-like (B, C5, T/8, S5, S5) maps -> six
    levels (B, channels, T/4 / 2**l): a [1, S4, S4] and a [1, S5, S5] 3D conv, then four 1D
    convs (kernel 3, stride 2)."""

    def __init__(self, map_channels: tuple[int, int], map_sizes: tuple[int, int], channels: int):
        super().__init__()
        (c4, c5), (s4, s5) = map_channels, map_sizes
        self.from_4f = nn.Sequential(nn.Conv3d(c4, channels, (1, s4, s4)),
                                     _norm(channels),
                                     nn.ReLU(inplace=True))
        self.from_5c = nn.Sequential(nn.Conv3d(c5, channels, (1, s5, s5)),
                                     _norm(channels),
                                     nn.ReLU(inplace=True))
        self.down = nn.ModuleList(_conv1d(channels, channels, 2) for _ in range(NUM_LEVELS - 2))

    def forward(self, m4: torch.Tensor, m5: torch.Tensor) -> list[torch.Tensor]:
        levels = [self.from_4f(m4).flatten(2), self.from_5c(m5).flatten(2)]
        for conv in self.down:
            levels.append(conv(levels[-1]))
        return levels


def refine_pyramid(levels: list[torch.Tensor]) -> list[torch.Tensor]:
    """RFP, parameter-free: top-down, each level plus the refined level above it resized to its
    length by nearest-neighbour interpolation. Same shapes in and out."""
    refined = [levels[-1]]
    for level in reversed(levels[:-1]):
        refined.append(level + F.interpolate(refined[-1], size=level.shape[-1], mode="nearest"))
    return refined[::-1]


def frame_level_feature(lowest: torch.Tensor, frames: int) -> torch.Tensor:
    """f_a^c: the lowest refined level (B, C, T/4) linearly interpolated to (B, C, frames)."""
    return F.interpolate(lowest, size=frames, mode="linear", align_corners=False)


class SpatialTemporalTransformer(nn.Module):
    """STT (factorised encoder): the Mixed_4f-like map (B, C4, T/4, S, S) -> six sequences
    (B, channels, T/4 / 2**l).

    Each step's S*S spatial tokens (+ spatial position embedding) go through a spatial encoder
    and are averaged; the steps (+ temporal embedding) go through a temporal encoder and a
    Linear; 1D convs (kernel 3, stride 2) give the coarser scales."""

    def __init__(self, in_channels: int, tokens: int, steps: int, dim: int, heads: int,
                 layers: int, channels: int):
        super().__init__()
        self.embed = nn.Linear(in_channels, dim)
        self.spatial_pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, steps, dim))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        self.spatial = _encoder(dim, heads, layers)
        self.temporal = _encoder(dim, heads, layers)
        self.out = nn.Linear(dim, channels)
        self.down = nn.ModuleList(_conv1d(channels, channels, 2) for _ in range(NUM_LEVELS - 1))

    def forward(self, m4: torch.Tensor) -> list[torch.Tensor]:
        batch, chans, steps, h, w = m4.shape
        tokens = m4.permute(0, 2, 3, 4, 1).reshape(batch * steps, h * w, chans)
        x = self.spatial(self.embed(tokens) + self.spatial_pos).mean(1)
        x = x.reshape(batch, steps, -1) + self.temporal_pos[:, :steps]
        seqs = [self.out(self.temporal(x)).transpose(1, 2)]
        for conv in self.down:
            seqs.append(conv(seqs[-1]))
        return seqs


class FrameSelfAttention(nn.Module):
    """FSA: frames (B, K, T, S, S) -> f_a^r (B, dim, T). Each frame is cut into (S/D)^2 patches
    of D x D pixels, embedded with a patch position embedding, encoded by a transformer; the
    mean token goes through an FC."""

    def __init__(self, in_channels: int, frame_size: int, patch: int, dim: int, heads: int,
                 layers: int):
        super().__init__()
        self.patch = patch
        tokens = (frame_size // patch) ** 2
        self.embed = nn.Linear(in_channels * patch * patch, dim)
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = _encoder(dim, heads, layers)
        self.fc = nn.Linear(dim, dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, chans, steps, h, w = frames.shape
        d = self.patch
        patches = frames.reshape(batch, chans, steps, h // d, d, w // d, d)
        patches = patches.permute(0, 2, 3, 5, 1, 4, 6).reshape(batch * steps, -1, chans * d * d)
        x = self.encoder(self.embed(patches) + self.pos).mean(1)
        return self.fc(x).reshape(batch, steps, -1).transpose(1, 2)

"""The CLTDR decoder (Cross-Layer Task-Decoupling and Refinement) on a feature pyramid.

Every module takes the pyramid ``P_0 .. P_{L-1}`` (finest first; level ``l+1`` has about half the
steps of level ``l``: ``T_{l+1} = ceil(T_l / 2)`` or ``T_l // 2``) as lists of (B, C, T_l)
features and (B, 1, T_l) bool masks, and returns one (B, C, T_l) feature per level. Parameters
are shared across levels.

Resampling between levels uses a transposed conv (kernel 3, stride 2, output length 2 T_{l+1})
to go up and a strided conv (kernel 3, stride 2, output ceil(T_{l-1} / 2)) to go down; the result
is cropped or zero-padded on the right to the target level's length, so odd lengths work.

``masked=True`` (pytal's default): features are zeroed at padded steps before resampling, the
global average pool of the attention runs over valid steps only, and outputs are zeroed at padded
steps. ``masked=False`` reproduces the public code, which ignores masks in these modules (its
pooling averages over the padding too).

``lengths`` (optional, one per level): return only the first ``lengths[l]`` steps of each level,
computed from the steps of the neighbours they depend on (the model passes the valid extent
plus the heads' reach, so the padding of ``max_seq_len`` costs no resampling; the unmasked
attention still pools over every step).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.nn.pointwise import PointwiseConv1d

__all__ = ["DecoupledClassification", "DecoupledRegression", "CrossLayerFusion", "match_length",
           "masked_mean", "check_lengths", "downsample_prefix", "upsample_prefix"]


def match_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Crop or zero-pad (on the right) the last dimension of ``x`` to ``length``."""
    n = x.shape[-1]
    if n == length:
        return x
    if n > length:
        return x[..., :length]
    return F.pad(x, (0, length - n))


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of (B, C, T) ``x``: over all steps if ``mask`` is None, else over the
    steps where the (B, 1, T) bool mask is True (0 for an all-padding row). -> (B, C, 1)."""
    if mask is None:
        return x.mean(dim=-1, keepdim=True)
    m = mask.to(x.dtype)
    return (x * m).sum(dim=-1, keepdim=True) / m.sum(dim=-1, keepdim=True).clamp(min=1.0)


def _check_pyramid(feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], n_embd: int) -> None:
    if len(feats) == 0:
        raise ValueError("feats: expected at least one pyramid level")
    if len(masks) != len(feats):
        raise ValueError(f"masks: expected one mask per level ({len(feats)}), got {len(masks)}")
    for level, (f, m) in enumerate(zip(feats, masks)):
        if f.dim() != 3 or f.shape[1] != n_embd:
            raise ValueError(f"feats[{level}]: expected shape (B, {n_embd}, T), got {tuple(f.shape)}")
        if m.shape != (f.shape[0], 1, f.shape[-1]):
            raise ValueError(f"masks[{level}]: expected shape {(f.shape[0], 1, f.shape[-1])}, got {tuple(m.shape)}")


def _upsample_conv(n_embd: int) -> nn.ConvTranspose1d:
    return nn.ConvTranspose1d(n_embd, n_embd, kernel_size=3, stride=2, padding=1, output_padding=1)


def _downsample_conv(n_embd: int) -> nn.Conv1d:
    return nn.Conv1d(n_embd, n_embd, kernel_size=3, stride=2, padding=1)


def upsample_prefix(conv: nn.ConvTranspose1d, x: torch.Tensor, length: int) -> torch.Tensor:
    """``match_length(conv(x), length)`` of the kernel-3, stride-2 transposed conv, reading
    only the steps of ``x`` it needs: output step ``i`` depends on input steps ``<= (i+1)//2``."""
    return match_length(conv(x[..., :length // 2 + 1]), length)


def downsample_prefix(conv: nn.Conv1d, x: torch.Tensor, length: int) -> torch.Tensor:
    """``match_length(conv(x), length)`` of the kernel-3, stride-2 conv (padding 1), reading
    only the steps of ``x`` it needs: output step ``i`` depends on input steps ``<= 2i + 1``."""
    return match_length(conv(x[..., :2 * length]), length)


def check_lengths(lengths: Sequence[int] | None, feats: Sequence[torch.Tensor],
                  masks: Sequence[torch.Tensor]) -> list[int]:
    """The output lengths of a decoder module, one per level in [0, T_l] (default T_l). The
    modules return the first ``lengths[l]`` steps of their full output; callers keep every
    valid step and the padded steps the heads' kernels reach."""
    full = [f.shape[-1] for f in feats]
    if lengths is None:
        return full
    lengths = [int(n) for n in lengths]
    if len(lengths) != len(full) or any(not 0 <= n <= t for n, t in zip(lengths, full)):
        raise ValueError(f"lengths: expected one length per level, each in [0, T_l] with T_l = "
                         f"{full}, got {lengths}")
    return lengths


class _CrossLevelAttention(nn.Module):
    """``W = Sigmoid(FC(GAP(ReLU(g + Lateral(f)))))``: a (B, C, 1) channel gate computed from a
    resampled neighbour level ``g`` and the current level ``f`` (Lateral and FC are 1x1 convs)."""

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.lateral = PointwiseConv1d(n_embd, n_embd)
        self.fc = PointwiseConv1d(n_embd, n_embd)

    def forward(self, g: torch.Tensor, f: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        pooled = masked_mean(F.relu(g + self.lateral(f)), mask)
        return torch.sigmoid(self.fc(pooled))


class _Decoupler(nn.Module):
    """Shared logic of the two decoupling modules: ``out_l = P_l + W * g_l`` where ``g_l`` is the
    neighbour level resampled onto level ``l`` and ``W`` its cross-level attention."""

    #: +1: the neighbour is the coarser level (classification); -1: the finer one (regression)
    _direction = 0

    def __init__(self, n_embd: int, masked: bool = True) -> None:
        super().__init__()
        self.n_embd = n_embd
        self.masked = masked
        self.attention = _CrossLevelAttention(n_embd)

    def _resample(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """The first ``length`` steps of the neighbour ``x`` resampled onto this level."""
        raise NotImplementedError

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """feats: L x (B, C, T_l); masks: L x (B, 1, T_l) bool -> L x (B, C, n_l), the first
        ``n_l = lengths[l]`` steps (default T_l) of the full output (see :func:`check_lengths`),
        computed on those only, except the unmasked attention's pooling, which reads all."""
        _check_pyramid(feats, masks, self.n_embd)
        lengths = check_lengths(lengths, feats, masks)
        if self.masked:
            feats = [f * m.to(f.dtype) for f, m in zip(feats, masks)]
        out = []
        for level, (f, m) in enumerate(zip(feats, masks)):
            n = lengths[level]
            src = level + self._direction
            if 0 <= src < len(feats):
                # unmasked, the attention pools over every step, padding included
                span = n if self.masked else f.shape[-1]
                g = self._resample(feats[src], span)
                f, m = f[..., :span], m[..., :span]
                if self.masked:
                    g = g * m.to(g.dtype)
                w = self.attention(g, f, m if self.masked else None)
                f = f[..., :n] + w * g[..., :n]
            out.append(f[..., :n])
        return out


class DecoupledClassification(_Decoupler):
    """Decoupled Classification Module: ``f_cls_l = P_l + W * up(P_{l+1})`` with
    ``W = Sigmoid(FC(GAP(ReLU(up(P_{l+1}) + Lateral(P_l)))))``, ``up`` a transposed conv; the
    coarsest level passes through unchanged. Submodules: ``upsample``, ``attention.lateral``,
    ``attention.fc``."""

    _direction = 1

    def __init__(self, n_embd: int, masked: bool = True) -> None:
        super().__init__(n_embd, masked)
        self.upsample = _upsample_conv(n_embd)

    def _resample(self, x: torch.Tensor, length: int) -> torch.Tensor:
        return upsample_prefix(self.upsample, x, length)


class DecoupledRegression(_Decoupler):
    """Decoupled Regression Module: ``f_reg_l = P_l + W * down(P_{l-1})`` with ``W`` as in
    ``DecoupledClassification`` and ``down`` a stride-2 conv; the finest level passes through
    unchanged. Submodules: ``downsample``, ``attention.lateral``, ``attention.fc``."""

    _direction = -1

    def __init__(self, n_embd: int, masked: bool = True) -> None:
        super().__init__(n_embd, masked)
        self.downsample = _downsample_conv(n_embd)

    def _resample(self, x: torch.Tensor, length: int) -> torch.Tensor:
        return downsample_prefix(self.downsample, x, length)


class CrossLayerFusion(nn.Module):
    """Cross-Layer Feature Fusion: ``f_c_l = down(P_{l-1}) + P_l + up(P_{l+1})``, missing terms
    dropped at the first and last levels. Submodules: ``downsample`` (stride-2 conv) and
    ``upsample`` (transposed conv), distinct from the decouplers' ones."""

    def __init__(self, n_embd: int, masked: bool = True) -> None:
        super().__init__()
        self.n_embd = n_embd
        self.masked = masked
        self.downsample = _downsample_conv(n_embd)
        self.upsample = _upsample_conv(n_embd)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                lengths: Sequence[int] | None = None) -> list[torch.Tensor]:
        """feats: L x (B, C, T_l); masks: L x (B, 1, T_l) bool -> L x (B, C, n_l): the first
        ``n_l = lengths[l]`` steps (default T_l), computed on those only."""
        _check_pyramid(feats, masks, self.n_embd)
        lengths = check_lengths(lengths, feats, masks)
        if self.masked:
            feats = [f * m.to(f.dtype) for f, m in zip(feats, masks)]
        out = []
        for level, f in enumerate(feats):
            n = lengths[level]
            fused = f[..., :n]
            if level > 0:
                fused = fused + downsample_prefix(self.downsample, feats[level - 1], n)
            if level + 1 < len(feats):
                fused = fused + upsample_prefix(self.upsample, feats[level + 1], n)
            if self.masked:
                fused = fused * masks[level][..., :n].to(fused.dtype)
            out.append(fused)
        return out

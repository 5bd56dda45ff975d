"""Prediction heads of CLTDR-GMG, applied level by level with parameters shared across levels
(the generic ``ConvTower`` and ``ClassificationHead`` are in :mod:`pytal.models.common.heads`).

All heads take lists of (B, C, T_l) features and (B, 1, T_l) bool masks and return lists (one
entry per level) of channel-first outputs, zero at padded steps (masked convolutions).

* ``TridentHead``: the Trident regression head: start and end boundary logits (B, Cb, T_l) and
  centre-offset logits (B, T_l, 2, K), K = num_bins + 1, i.e. exactly the inputs of
  ``pytal.ops.trident_decode``, which turns them into expected (left, right) distances in
  strides (feature steps of the level).
* ``RefineHead``: on the cross-layer fused features, per-class refinement logits
  (B, num_classes, T_l) and per-class start/end boundary offsets (B, num_classes, T_l) in input
  feature steps.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models.common.heads import ClassificationHead, ConvTower, check_levels, prior_bias
from pytal.nn.masked_conv import MaskedConv1D
from pytal.nn.scale import Scale

__all__ = ["ClassificationHead", "OffsetHead", "TridentHead", "RefineHead", "prior_bias"]


class OffsetHead(nn.Module):
    """Centre-offset branch of the Trident head: conv tower, a masked conv to ``2 * K``
    channels, a per-level ``Scale`` and ReLU (non-negative logits, as the public code does).

    Submodules: ``tower``, ``offset``, ``scales.<l>``.
    Output: L x (B, T_l, 2, K) (index 0 of dim 2: start side, 1: end side), float32 under
    autocast too.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_bins: int, *,
                 num_layers: int = 3, kernel_size: int = 3, with_ln: bool = True) -> None:
        super().__init__()
        if num_bins < 0:
            raise ValueError(f"num_bins: expected >= 0, got {num_bins}")
        self.num_levels = num_levels
        self.num_bins = num_bins
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        self.offset = MaskedConv1D(self.tower.out_dim, 2 * (num_bins + 1), kernel_size,
                                   float32_output=True)
        self.scales = nn.ModuleList(Scale() for _ in range(num_levels))

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_levels(feats, masks)
        if len(feats) != self.num_levels:
            raise ValueError(f"feats: expected {self.num_levels} levels, got {len(feats)}")
        out = []
        for level, (x, mask) in enumerate(zip(feats, masks)):
            o, _ = self.offset(self.tower(x, mask), mask)
            o = F.relu(self.scales[level](o))                        # (B, 2K, T)
            b, _, t = o.shape
            out.append(o.view(b, 2, self.num_bins + 1, t).permute(0, 3, 1, 2))  # (B, T, 2, K)
        return out


class TridentHead(nn.Module):
    """Trident regression head: start and end boundary branches (``ClassificationHead``s with
    ``num_boundary_classes`` outputs, inputs detached as in the public code) and the
    centre-offset branch (``OffsetHead``).

    ``forward(reg_feats, masks, boundary_feats=None)``: the centre-offset branch reads
    ``reg_feats`` (the Decoupled Regression Module's output); the boundary branches read
    ``boundary_feats`` (the public code feeds them the plain pyramid ``P_l``), or ``reg_feats``
    when None.

    Returns ``(start_logits, end_logits, offset_logits)``: lists over levels of (B, Cb, T_l),
    (B, Cb, T_l) and (B, T_l, 2, K), the arguments of ``pytal.ops.trident_decode``.
    Submodules: ``start``, ``end``, ``offset``.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_boundary_classes: int,
                 num_bins: int, *, num_layers: int = 3, kernel_size: int = 3,
                 boundary_kernel_size: int = 3, with_ln: bool = True, prior_prob: float = 0.01,
                 empty_cls: Sequence[int] = (), detach_boundary_input: bool = True) -> None:
        super().__init__()
        self.num_bins = num_bins
        boundary = dict(num_layers=num_layers, kernel_size=boundary_kernel_size, with_ln=with_ln,
                        prior_prob=prior_prob, empty_cls=empty_cls, detach_input=detach_boundary_input)
        self.start = ClassificationHead(input_dim, feat_dim, num_boundary_classes, **boundary)
        self.end = ClassificationHead(input_dim, feat_dim, num_boundary_classes, **boundary)
        self.offset = OffsetHead(input_dim, feat_dim, num_levels, num_bins, num_layers=num_layers,
                                 kernel_size=kernel_size, with_ln=with_ln)

    def forward(self, reg_feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                boundary_feats: Sequence[torch.Tensor] | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        boundary_feats = reg_feats if boundary_feats is None else boundary_feats
        if len(boundary_feats) != len(reg_feats):
            raise ValueError(f"boundary_feats: expected {len(reg_feats)} levels, got {len(boundary_feats)}")
        return (self.start(boundary_feats, masks), self.end(boundary_feats, masks),
                self.offset(reg_feats, masks))


class RefineHead(nn.Module):
    """Refinement head on the cross-layer fused features ``f_c``: a conv tower, then per-class
    refinement logits (kernel ``kernel_size``, zero-initialised bias) and per-class start/end
    boundary offsets (kernel ``offset_kernel_size``, 7 in the public code).

    The offsets are in input feature steps and are added to the decoded boundaries
    (see ``refinement.refine_offsets``). Submodules: ``tower``, ``logits``, ``start_offset``,
    ``end_offset``.

    Returns ``(refine_logits, start_offsets, end_offsets)``: lists of (B, num_classes, T_l),
    float32 under autocast too.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, *, num_layers: int = 3,
                 kernel_size: int = 3, offset_kernel_size: int = 7, with_ln: bool = True) -> None:
        super().__init__()
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        d = self.tower.out_dim
        self.logits = MaskedConv1D(d, num_classes, kernel_size, float32_output=True)
        self.start_offset = MaskedConv1D(d, num_classes, offset_kernel_size, float32_output=True)
        self.end_offset = MaskedConv1D(d, num_classes, offset_kernel_size, float32_output=True)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        check_levels(feats, masks)
        logits, starts, ends = [], [], []
        for x, mask in zip(feats, masks):
            h = self.tower(x, mask)
            logits.append(self.logits(h, mask)[0])
            starts.append(self.start_offset(h, mask)[0])
            ends.append(self.end_offset(h, mask)[0])
        return logits, starts, ends

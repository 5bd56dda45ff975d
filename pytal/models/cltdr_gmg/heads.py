"""Prediction heads of CLTDR-GMG, applied level by level with parameters shared across levels.

All heads take lists of (B, C, T_l) features and (B, 1, T_l) bool masks and return lists (one
entry per level) of channel-first outputs, zero at padded steps (masked convolutions).

* ``ClassificationHead``: class logits (B, num_classes, T_l).
* ``TridentHead``: the Trident regression head: start and end boundary logits (B, Cb, T_l) and
  centre-offset logits (B, T_l, 2, K), K = num_bins + 1, i.e. exactly the inputs of
  ``pytal.ops.trident_decode``, which turns them into expected (left, right) distances in
  strides (feature steps of the level).
* ``RefineHead``: on the cross-layer fused features, per-class refinement logits
  (B, num_classes, T_l) and per-class start/end boundary offsets (B, num_classes, T_l) in input
  feature steps.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.nn.norm import ChannelLayerNorm
from pytal.nn.masked_conv import MaskedConv1D
from pytal.nn.scale import Scale

__all__ = ["ConvTower", "ClassificationHead", "OffsetHead", "TridentHead", "RefineHead",
           "prior_bias"]


def prior_bias(prior_prob: float) -> float:
    """Bias making ``sigmoid(bias) == prior_prob`` (RetinaNet's prior initialisation)."""
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob: expected a probability in (0, 1), got {prior_prob}")
    return -math.log((1.0 - prior_prob) / prior_prob)


def _check_levels(feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> None:
    if len(feats) != len(masks):
        raise ValueError(f"masks: expected one mask per level ({len(feats)}), got {len(masks)}")


class ConvTower(nn.Module):
    """``num_convs`` x (MaskedConv1D -> optional ChannelLayerNorm -> ReLU); convs have no bias
    when followed by LayerNorm. Submodules ``convs.<i>`` and ``norms.<i>``.

    Shapes: (B, input_dim, T), mask (B, 1, T) -> (B, feat_dim, T) (input unchanged if
    ``num_convs == 0``)."""

    def __init__(self, input_dim: int, feat_dim: int, num_convs: int, kernel_size: int = 3,
                 with_ln: bool = True) -> None:
        super().__init__()
        if num_convs < 0:
            raise ValueError(f"num_convs: expected >= 0, got {num_convs}")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_convs):
            self.convs.append(MaskedConv1D(input_dim if i == 0 else feat_dim, feat_dim, kernel_size,
                                           bias=not with_ln))
            self.norms.append(ChannelLayerNorm(feat_dim) if with_ln else nn.Identity())
        self.out_dim = feat_dim if num_convs > 0 else input_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x, _ = conv(x, mask)
            x = F.relu(norm(x))
        return x


class ClassificationHead(nn.Module):
    """Conv tower (``num_layers - 1`` convs) and a masked conv classifier with prior bias.

    Args:
        input_dim, feat_dim: channels of the input features and of the tower.
        num_classes: output channels.
        num_layers: convs including the classifier (3 in the paper's configs).
        kernel_size: kernel of every conv.
        with_ln: LayerNorm after each tower conv.
        prior_prob: initial ``sigmoid`` of every logit (0.01).
        empty_cls: classes without training data; their bias is set so ``sigmoid = 1e-6``.
        detach_input: stop gradients into the input features (the Trident boundary branches
            of the public code do this).

    Submodules: ``tower``, ``classifier``. Output: L x (B, num_classes, T_l) logits.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, *, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = True, prior_prob: float = 0.01,
                 empty_cls: Sequence[int] = (), detach_input: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers: expected >= 1, got {num_layers}")
        self.detach_input = detach_input
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        self.classifier = MaskedConv1D(self.tower.out_dim, num_classes, kernel_size)
        nn.init.constant_(self.classifier.conv.bias, prior_bias(prior_prob))
        for c in empty_cls:
            if not 0 <= c < num_classes:
                raise ValueError(f"empty_cls: class {c} outside [0, {num_classes})")
            nn.init.constant_(self.classifier.conv.bias[c], prior_bias(1e-6))

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        _check_levels(feats, masks)
        out = []
        for x, mask in zip(feats, masks):
            if self.detach_input:
                x = x.detach()
            logits, _ = self.classifier(self.tower(x, mask), mask)
            out.append(logits)
        return out


class OffsetHead(nn.Module):
    """Centre-offset branch of the Trident head: conv tower, a masked conv to ``2 * K``
    channels, a per-level ``Scale`` and ReLU (non-negative logits, as the public code does).

    Submodules: ``tower``, ``offset``, ``scales.<l>``.
    Output: L x (B, T_l, 2, K) (index 0 of dim 2: start side, 1: end side).
    """

    def __init__(self, input_dim: int, feat_dim: int, num_levels: int, num_bins: int, *,
                 num_layers: int = 3, kernel_size: int = 3, with_ln: bool = True) -> None:
        super().__init__()
        if num_bins < 0:
            raise ValueError(f"num_bins: expected >= 0, got {num_bins}")
        self.num_levels = num_levels
        self.num_bins = num_bins
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        self.offset = MaskedConv1D(self.tower.out_dim, 2 * (num_bins + 1), kernel_size)
        self.scales = nn.ModuleList(Scale() for _ in range(num_levels))

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        _check_levels(feats, masks)
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

    Returns ``(refine_logits, start_offsets, end_offsets)``: lists of (B, num_classes, T_l).
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, *, num_layers: int = 3,
                 kernel_size: int = 3, offset_kernel_size: int = 7, with_ln: bool = True) -> None:
        super().__init__()
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        d = self.tower.out_dim
        self.logits = MaskedConv1D(d, num_classes, kernel_size)
        self.start_offset = MaskedConv1D(d, num_classes, offset_kernel_size)
        self.end_offset = MaskedConv1D(d, num_classes, offset_kernel_size)

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        _check_levels(feats, masks)
        logits, starts, ends = [], [], []
        for x, mask in zip(feats, masks):
            h = self.tower(x, mask)
            logits.append(self.logits(h, mask)[0])
            starts.append(self.start_offset(h, mask)[0])
            ends.append(self.end_offset(h, mask)[0])
        return logits, starts, ends

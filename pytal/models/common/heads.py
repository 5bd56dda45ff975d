"""Heads shared by the detectors, applied level by level with parameters shared across levels.

They take lists of (B, C, T_l) features and (B, 1, T_l) bool masks and return lists (one entry
per level) of channel-first outputs, zero at padded steps (masked convolutions).

* ``ConvTower``: masked convs with optional channel LayerNorm and ReLU.
* ``ClassificationHead``: class logits (B, num_classes, T_l) with RetinaNet's prior bias.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.nn.masked_conv import MaskedConv1D
from pytal.nn.norm import ChannelLayerNorm

__all__ = ["ConvTower", "ClassificationHead", "check_levels", "prior_bias"]


def prior_bias(prior_prob: float) -> float:
    """Bias making ``sigmoid(bias) == prior_prob`` (RetinaNet's prior initialisation)."""
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob: expected a probability in (0, 1), got {prior_prob}")
    return -math.log((1.0 - prior_prob) / prior_prob)


def check_levels(feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> None:
    """One (B, 1, T_l) mask per level of ``feats``."""
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

    def forward_prefix(self, x: torch.Tensor, mask: torch.Tensor, extent: int) -> torch.Tensor:
        """``forward(x, mask)`` when no step from ``extent`` on is valid, computed on the first
        ``extent`` steps plus the kernel's reach only. Equal to ``forward``: at a masked step
        every layer outputs ``relu(norm(0))`` whatever its neighbours hold, so all later steps
        equal the last computed one and are copied from it."""
        if not self.convs:
            return x
        length = x.shape[-1]
        stop = min(length, extent + max(self.convs[0].conv.kernel_size[0] // 2, 1))
        if stop >= length:
            return self.forward(x, mask)
        out = self.forward(x[..., :stop], mask[..., :stop])
        return F.pad(out, (0, length - stop), mode="replicate")


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

    Submodules: ``tower``, ``classifier``. Output: L x (B, num_classes, T_l) logits, float32
    under autocast too.
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int, *, num_layers: int = 3,
                 kernel_size: int = 3, with_ln: bool = True, prior_prob: float = 0.01,
                 empty_cls: Sequence[int] = (), detach_input: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers: expected >= 1, got {num_layers}")
        self.detach_input = detach_input
        self.tower = ConvTower(input_dim, feat_dim, num_layers - 1, kernel_size, with_ln)
        self.classifier = MaskedConv1D(self.tower.out_dim, num_classes, kernel_size,
                                       float32_output=True)
        nn.init.constant_(self.classifier.conv.bias, prior_bias(prior_prob))
        for c in empty_cls:
            if not 0 <= c < num_classes:
                raise ValueError(f"empty_cls: class {c} outside [0, {num_classes})")
            nn.init.constant_(self.classifier.conv.bias[c], prior_bias(1e-6))

    def forward(self, feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_levels(feats, masks)
        out = []
        for x, mask in zip(feats, masks):
            if self.detach_input:
                x = x.detach()
            logits, _ = self.classifier(self.tower(x, mask), mask)
            out.append(logits)
        return out

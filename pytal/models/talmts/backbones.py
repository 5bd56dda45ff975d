"""TAL-MTS stream backbones: inputs of one stream -> the Mixed_4f-like map (B, C4, T/4, S/16,
S/16) and the Mixed_5c-like map (B, C5, T/8, S/32, S/32), T frames of S x S pixels.

* :class:`Small3dBackbone`: a few strided 3D convs with those output shapes (CPU configs).
* :class:`I3dBackbone`: pytal's Inception-I3D, read out after Mixed_4f and Mixed_5c.
* :class:`FeatureMapsBackbone`: pre-extracted maps packed per input step
  (:mod:`pytal.backbones.feature_maps`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pytal.backbones import InceptionI3d, load_i3d_state_dict
from pytal.backbones.feature_maps import unpack_feature_maps

__all__ = ["FeatureMapsBackbone", "I3dBackbone", "Small3dBackbone"]


class Small3dBackbone(nn.Module):
    """(B, K, T, S, S) frames -> ((B, C4, T/4, S/16, S/16), (B, C5, T/8, S/32, S/32))."""

    def __init__(self, in_channels: int, map_channels: tuple[int, int], width: int):
        super().__init__()

        def unit(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
            return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1), nn.BatchNorm3d(cout),
                                 nn.ReLU(inplace=True))

        c4, c5 = map_channels
        self.to_4f = nn.Sequential(unit(in_channels, width, (1, 2, 2)),
                                   unit(width, width, (2, 2, 2)),
                                   unit(width, width, (2, 2, 2)),
                                   unit(width, c4, (1, 2, 2)))
        self.to_5c = unit(c4, c5, (2, 2, 2))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m4 = self.to_4f(frames)
        return m4, self.to_5c(m4)


class I3dBackbone(nn.Module):
    """Inception-I3D: (B, K, T, S, S) frames in [-1, 1] -> Mixed_4f (B, 832, T/4, S/16, S/16)
    and Mixed_5c (B, 1024, T/8, S/32, S/32). ``weights``: a state dict file in the public
    ``rgb_imagenet.pt`` / ``flow_imagenet.pt`` layout, or None for random weights."""

    def __init__(self, in_channels: int, weights: Optional[str]):
        super().__init__()
        self.net = InceptionI3d(in_channels=in_channels)
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            load_i3d_state_dict(self.net, state, source=weights)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.mixed_maps(frames)


class FeatureMapsBackbone(nn.Module):
    """Pre-extracted maps: (B, D, T/8) packed rows -> the two maps (no parameters)."""

    def __init__(self, map_channels: tuple[int, int], map_sizes: tuple[int, int]):
        super().__init__()
        self.map_channels, self.map_sizes = map_channels, map_sizes

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unpack_feature_maps(feats, self.map_channels, self.map_sizes)

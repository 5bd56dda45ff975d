"""TAL-MTS stream backbones: inputs of one stream -> the Mixed_4f-like map (B, C4, T/4, S/16,
S/16) and the Mixed_5c-like map (B, C5, T/8, S/32, S/32), T frames of S x S pixels.

* :class:`Small3dBackbone`: a few strided 3D convs with those output shapes (CPU configs).
* :class:`I3dBackbone`: pytal's Inception-I3D, read out after Mixed_4f and Mixed_5c.
* :class:`FeatureMapsBackbone`: pre-extracted maps packed per input step (see
  :func:`unpack_feature_maps`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pytal.backbones import InceptionI3d, load_i3d_state_dict

__all__ = ["FeatureMapsBackbone", "I3dBackbone", "Small3dBackbone", "pack_feature_maps",
           "unpack_feature_maps"]


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
        x, m4 = frames, None
        for name, module in self.net.named_children():
            if name == "logits":
                continue
            x = module(x)
            if name == "Mixed_4f":
                m4 = x
        return m4, x


def pack_feature_maps(m4: torch.Tensor, m5: torch.Tensor) -> torch.Tensor:
    """Pack maps of one stream (C4, T/4, S4, S4) and (C5, T/8, S5, S5) into the (T/8, D) rows
    the ``features`` backbone reads, D = 2 C4 S4^2 + C5 S5^2: row ``i`` holds Mixed_4f steps
    ``2i`` and ``2i+1`` then Mixed_5c step ``i``, each flattened in (channel, y, x) order."""
    steps = m5.shape[1]
    if m4.shape[1] != 2 * steps:
        raise ValueError(f"pack_feature_maps: Mixed_4f must have 2 x {steps} steps, got "
                         f"{m4.shape[1]}")
    a = m4.permute(1, 0, 2, 3).reshape(steps, 2, -1).reshape(steps, -1)
    b = m5.permute(1, 0, 2, 3).reshape(steps, -1)
    return torch.cat((a, b), dim=1)


def unpack_feature_maps(feats: torch.Tensor, map_channels: tuple[int, int],
                        map_sizes: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D, T/8) packed rows (see :func:`pack_feature_maps`) -> (B, C4, T/4, S4, S4) and
    (B, C5, T/8, S5, S5)."""
    (c4, c5), (s4, s5) = map_channels, map_sizes
    batch, dim, steps = feats.shape
    n4 = c4 * s4 * s4
    if dim != 2 * n4 + c5 * s5 * s5:
        raise ValueError(f"feature maps: expected {2 * n4 + c5 * s5 * s5} channels per step, "
                         f"got {dim}")
    rows = feats.transpose(1, 2)
    m4 = rows[..., :2 * n4].reshape(batch, steps, 2, c4, s4, s4)
    m4 = m4.reshape(batch, 2 * steps, c4, s4, s4).permute(0, 2, 1, 3, 4)
    m5 = rows[..., 2 * n4:].reshape(batch, steps, c5, s5, s5).permute(0, 2, 1, 3, 4)
    return m4.contiguous(), m5.contiguous()


class FeatureMapsBackbone(nn.Module):
    """Pre-extracted maps: (B, D, T/8) packed rows -> the two maps (no parameters)."""

    def __init__(self, map_channels: tuple[int, int], map_sizes: tuple[int, int]):
        super().__init__()
        self.map_channels, self.map_sizes = map_channels, map_sizes

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unpack_feature_maps(feats, self.map_channels, self.map_sizes)

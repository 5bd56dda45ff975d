"""Anchor points of the feature pyramid: one point per feature step of every level.

Units: everything here is in *input feature steps* (the grid of the features fed to the model,
before any pyramid downsampling). Level ``l`` has stride ``s_l = scale_factor ** l``; its step
``i`` sits at position ``i * s_l`` (no half-stride offset, as in ActionFormer, TriDet and the
CLTDR-GMG release).
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["PointGenerator", "POINT_T", "POINT_RANGE_LO", "POINT_RANGE_HI", "POINT_STRIDE",
           "pyramid_strides"]

# Column layout of the (T_l, 4) point tensors.
POINT_T = 0          # position of the point, input feature steps
POINT_RANGE_LO = 1   # lower end of the level's regression range, input feature steps
POINT_RANGE_HI = 2   # upper end of the level's regression range, input feature steps
POINT_STRIDE = 3     # stride of the level, input feature steps


def pyramid_strides(num_levels: int, scale_factor: int = 2) -> list[int]:
    """Strides ``[1, f, f**2, ...]`` (input feature steps) of a ``num_levels``-level pyramid."""
    if num_levels < 1:
        raise ValueError(f"num_levels: expected >= 1, got {num_levels}")
    if scale_factor < 1:
        raise ValueError(f"scale_factor: expected >= 1, got {scale_factor}")
    return [scale_factor ** level for level in range(num_levels)]


class PointGenerator:
    """Generates, for each pyramid level, a (T_l, 4) float32 tensor of rows
    ``[t, range_lo, range_hi, stride]`` (columns ``POINT_*``), all in input feature steps.

    A point of level ``l`` may be assigned an action whose larger distance from the point to
    a boundary, ``max(t - start, end - t)``, lies in ``[range_lo, range_hi]`` of that level.

    Args:
        strides: stride of each level (input feature steps), e.g. ``[1, 2, 4, 8, 16, 32]``.
        regression_ranges: ``[lo, hi]`` per level (input feature steps).

    Stateless apart from a small cache; it holds no parameters or buffers (nothing to save).
    """

    def __init__(self, strides: Sequence[int], regression_ranges: Sequence[Sequence[float]]) -> None:
        if len(strides) != len(regression_ranges):
            raise ValueError(f"regression_ranges: expected one [lo, hi] per level ({len(strides)}), "
                             f"got {len(regression_ranges)}")
        for level, rng in enumerate(regression_ranges):
            if len(rng) != 2 or not (rng[0] <= rng[1]):
                raise ValueError(f"regression_ranges[{level}]: expected [lo, hi] with lo <= hi, got {rng}")
        for level, s in enumerate(strides):
            if s <= 0:
                raise ValueError(f"strides[{level}]: expected a positive stride, got {s}")
        self.strides = [int(s) for s in strides]
        self.regression_ranges = [(float(lo), float(hi)) for lo, hi in regression_ranges]
        self._cache: dict[tuple, list[torch.Tensor]] = {}

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def __call__(self, lengths: Sequence[int], device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Points for levels of lengths ``lengths`` (T_0, ..., T_{L-1}); returns a list of
        (T_l, 4) float32 tensors on ``device``."""
        if len(lengths) != self.num_levels:
            raise ValueError(f"lengths: expected {self.num_levels} level lengths, got {len(lengths)}")
        device = torch.device(device) if device is not None else torch.device("cpu")
        key = (tuple(int(n) for n in lengths), str(device))
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            points = []
            for n, s, (lo, hi) in zip(key[0], self.strides, self.regression_ranges):
                t = torch.arange(n, dtype=torch.float32, device=device) * s
                cols = torch.tensor([lo, hi, float(s)], dtype=torch.float32, device=device)
                points.append(torch.cat([t[:, None], cols.expand(n, 3)], dim=1))
            self._cache[key] = points
        return [p.clone() for p in self._cache[key]]

    def from_features(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Points for a list of pyramid features (B, C, T_l), on their device."""
        return self([f.shape[-1] for f in feats], device=feats[0].device)

"""Seconds <-> feature steps: the one place that knows where a feature sits in time.

A feature sequence is described by a :class:`FeatureGrid`: feature ``i`` summarises the frames
``[i * feat_stride, i * feat_stride + num_frames)`` of a video decoded at ``fps`` frames per
second, so it is centred at ``(i * feat_stride + num_frames / 2) / fps`` seconds. Positions in
"feature steps" are real numbers on that grid (step ``i`` = centre of feature ``i``); segment
boundaries a little below 0 or above ``T - 1`` are normal.

ActivityNet-style datasets resize every video to a fixed number of steps ``L``; the grid is then
derived from the duration (:meth:`FeatureGrid.fixed_length`): stride = num_frames =
``duration * fps / L`` frames, so step ``i`` is centred at ``(i + 0.5) * duration / L`` seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

ArrayLike = TypeVar("ArrayLike", float, np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class FeatureGrid:
    """Where features sit in time.

    Attributes:
        fps: frames per second of the decoded video the features were computed on.
        feat_stride: frames between consecutive features (may be fractional after resizing).
        num_frames: frames each feature covers (its window length, in frames).
    """

    fps: float
    feat_stride: float
    num_frames: float

    def __post_init__(self) -> None:
        for name in ("fps", "feat_stride", "num_frames"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not (math.isfinite(number) and number > 0):
                raise ValueError(f"FeatureGrid.{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, number)

    @classmethod
    def fixed_length(cls, duration: float, length: int, fps: float) -> "FeatureGrid":
        """The grid of a video of ``duration`` seconds resized to ``length`` features."""
        if not duration > 0:
            raise ValueError(f"duration must be > 0 seconds to derive a fixed-length grid, got {duration!r}")
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length!r}")
        stride = duration * fps / length
        return cls(fps=float(fps), feat_stride=stride, num_frames=stride)

    @property
    def seconds_per_step(self) -> float:
        """Seconds between consecutive features."""
        return self.feat_stride / self.fps

    @property
    def offset(self) -> float:
        """Half a feature window, in steps: the step of time 0 is ``-offset``."""
        return 0.5 * self.num_frames / self.feat_stride

    def to_steps(self, seconds: ArrayLike) -> ArrayLike:
        """Seconds -> feature steps (same type and shape as the input)."""
        return seconds * (self.fps / self.feat_stride) - self.offset

    def to_seconds(self, steps: ArrayLike) -> ArrayLike:
        """Feature steps -> seconds (same type and shape as the input)."""
        return (steps * self.feat_stride + 0.5 * self.num_frames) / self.fps

    def num_features(self, duration: float) -> int:
        """How many full feature windows fit in ``duration`` seconds (at least 1)."""
        frames = duration * self.fps
        return max(1, int(math.floor((frames - self.num_frames) / self.feat_stride + 1e-6)) + 1)

    def covered_seconds(self, num_features: int) -> float:
        """Seconds spanned by ``num_features`` windows, from the first frame to the last."""
        return ((num_features - 1) * self.feat_stride + self.num_frames) / self.fps


def seconds_to_steps(seconds: ArrayLike, *, fps: float, feat_stride: float,
                     num_frames: float) -> ArrayLike:
    """Seconds -> feature steps; see :class:`FeatureGrid`."""
    return FeatureGrid(fps, feat_stride, num_frames).to_steps(seconds)


def steps_to_seconds(steps: ArrayLike, *, fps: float, feat_stride: float,
                     num_frames: float) -> ArrayLike:
    """Feature steps -> seconds; see :class:`FeatureGrid`."""
    return FeatureGrid(fps, feat_stride, num_frames).to_seconds(steps)

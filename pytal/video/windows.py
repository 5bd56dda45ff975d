"""Sliding windows over a frame stream: ``num_frames`` frames per window, ``stride`` frames
between window starts. Window ``i`` covers frames ``[i * stride, i * stride + num_frames)`` and
its feature is centred at ``(i * stride + num_frames / 2) / fps`` seconds (the timing of
:class:`pytal.data.FeatureGrid`). A stream of ``F`` frames gives
``T = max(1, floor((F - num_frames) / stride) + 1)`` windows: trailing frames that do not fill a
window are dropped, and a stream shorter than one window gives one window zero-padded at the end.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator

import numpy as np

__all__ = ["num_windows", "window_centres", "iter_windows"]


def _check(num_frames: int, stride: int) -> None:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be an integer >= 1, got {num_frames!r}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")


def num_windows(frames: int, num_frames: int, stride: int) -> int:
    """``T = max(1, floor((frames - num_frames) / stride) + 1)``."""
    _check(num_frames, stride)
    if frames < num_frames:
        return 1
    return (frames - num_frames) // stride + 1


def window_centres(count: int, num_frames: int, stride: int, fps: float) -> np.ndarray:
    """(count,) float64 seconds: ``(i * stride + num_frames / 2) / fps``."""
    _check(num_frames, stride)
    return (np.arange(count) * stride + num_frames / 2) / fps


def iter_windows(frames: Iterable[np.ndarray], num_frames: int, stride: int
                 ) -> Iterator[np.ndarray]:
    """(num_frames, H, W, 3) arrays, one per window, from a stream of (H, W, 3) frames; keeps at
    most ``num_frames`` frames in memory. A stream with fewer than ``num_frames`` frames (but at
    least one) yields one window padded with zero frames; an empty stream yields nothing."""
    _check(num_frames, stride)
    buffer: deque = deque(maxlen=num_frames)
    seen = 0
    next_start = 0          # frame index where the next window starts
    emitted = False
    for frame in frames:
        buffer.append(frame)
        seen += 1
        if seen == next_start + num_frames:
            yield np.stack(buffer)
            emitted = True
            next_start += stride
    if not emitted and buffer:
        window = np.zeros((num_frames,) + buffer[0].shape, dtype=buffer[0].dtype)
        window[:len(buffer)] = np.stack(buffer)
        yield window

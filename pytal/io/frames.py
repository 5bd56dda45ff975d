"""Frame-video files: ``<dir>/<video_id>.npy``, uint8 (T, H, W, K) arrays (K = 3 for RGB, 2 for
optical flow with 128 = no motion), read memory-mapped."""
from __future__ import annotations

import os

import numpy as np

__all__ = ["load_frames"]


def load_frames(path: str, channels: int) -> np.ndarray:
    """(T, H, W, channels) uint8 array of a ``.npy`` file, memory-mapped; errors name the
    file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"frame file not found: {path}")
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"frame file {path}: not a readable .npy file ({err})") from None
    if frames.ndim != 4 or frames.shape[-1] != channels or frames.dtype != np.uint8:
        raise ValueError(f"frame file {path}: expected a uint8 (T, H, W, {channels}) array, got "
                         f"{frames.dtype} {tuple(frames.shape)}")
    return frames

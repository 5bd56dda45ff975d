"""Small synthetic videos (moving coloured shapes) written with PyAV, for tests and benchmarks."""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Optional, Union

import numpy as np

from pytal.video.decode import require_av

__all__ = ["write_synthetic_video", "write_grey_ramp_video"]


def _encode(path: str, frames, fps: Union[int, float, Fraction], width: int, height: int,
            codec: str, lossless: bool) -> str:
    av = require_av()
    rate = Fraction(fps).limit_denominator(1001)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if lossless and codec == "libx264":
            stream.options = {"qp": "0", "preset": "ultrafast"}
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_synthetic_video(path: str, *, seconds: float = 3.0, fps: float = 25, width: int = 64,
                          height: int = 48, seed: int = 0, codec: str = "libx264") -> str:
    """``seconds * fps`` frames (H, W) of a few coloured rectangles moving over a dark
    background (deterministic from ``seed``); returns ``path``."""
    rng = np.random.default_rng(seed)
    count = int(round(seconds * fps))
    shapes = [(rng.integers(40, 256, 3), rng.uniform(0, 1, 2), rng.uniform(-0.4, 0.4, 2),
               rng.integers(4, max(5, min(width, height) // 3), 2)) for _ in range(3)]

    def frames():
        for i in range(count):
            image = np.full((height, width, 3), 16, np.uint8)
            t = i / fps
            for colour, start, speed, (h, w) in shapes:
                y = int(((start[0] + speed[0] * t) % 1.0) * (height - h))
                x = int(((start[1] + speed[1] * t) % 1.0) * (width - w))
                image[y:y + h, x:x + w] = colour
            yield image

    return _encode(path, frames(), fps, width, height, codec, lossless=False)


def write_grey_ramp_video(path: str, *, frames: int, fps: float, step: int = 8,
                          width: int = 32, height: int = 32, codec: str = "libx264",
                          values: Optional[list[int]] = None) -> str:
    """A video whose frame ``j`` is flat grey ``j * step`` (or ``values[j]``), losslessly coded,
    so a decoded frame tells which source frame it was: ``round(mean / step)``."""
    levels = values if values is not None else [j * step for j in range(frames)]
    if max(levels) > 255:
        raise ValueError(f"{frames} frames with step {step} exceed grey level 255")
    images = (np.full((height, width, 3), v, np.uint8) for v in levels)
    return _encode(path, images, fps, width, height, codec, lossless=True)

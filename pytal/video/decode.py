"""Streaming video decoding with PyAV: frames resampled to a target fps, resized and
centre-cropped, one frame at a time (an hour of video never sits in memory whole).

Resampling rule (nearest frame by timestamp): with the decoded frames at times ``t_j`` seconds
(presentation timestamps, relative to the first frame) and the video ending at
``end = t_last + 1 / native_fps``, output frame ``k`` is shown at ``k / fps`` for every ``k`` with
``k / fps < end``, and is the decoded frame whose ``t_j`` is nearest to ``k / fps`` (a tie goes to
the earlier frame; times are compared as exact fractions, so ties are real ties). Without a target fps every decoded frame is kept, at the stream's average
frame rate. So a 10 s video resampled to 15 fps gives 150 frames whatever its native rate.
"""
from __future__ import annotations

import os
from fractions import Fraction
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import numpy as np

__all__ = ["VideoError", "VideoInfo", "FrameTransform", "probe_video", "iter_frames",
           "nearest_frame_indices", "require_av"]


class VideoError(ValueError):
    """A video that cannot be used; the message names the file."""


def require_av():
    """The ``av`` module, or an ImportError saying how to install it."""
    try:
        import av
    except ImportError:
        raise ImportError("video decoding needs PyAV: pip install 'pytal[video]' "
                          "(or pip install av)") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream.

    Attributes:
        path: the file.
        native_fps: the stream's average frame rate (frames per second).
        width, height: frame size in pixels.
        duration: seconds, from the container or stream header (None when neither says).
        frames: frame count from the header (0 when unknown).
    """

    path: str
    native_fps: float
    width: int
    height: int
    duration: Optional[float]
    frames: int


@dataclass(frozen=True)
class FrameTransform:
    """Resize then centre-crop, as a backbone expects.

    Attributes:
        resize: ``(short_side,)`` keeps the aspect ratio and scales the shorter side to
            ``short_side`` pixels; ``(height, width)`` scales to exactly that size.
        crop: ``(height, width)`` of the centre crop (must fit in the resized frame).
    """

    resize: tuple[int, ...]
    crop: tuple[int, int]

    def __post_init__(self) -> None:
        if len(self.resize) not in (1, 2) or min(self.resize) < 1:
            raise ValueError(f"resize must be (short_side,) or (height, width) of positive "
                             f"pixels, got {self.resize!r}")
        if len(self.crop) != 2 or min(self.crop) < 1:
            raise ValueError(f"crop must be (height, width) of positive pixels, got {self.crop!r}")

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after resizing a ``height`` x ``width`` frame; never smaller than
        the crop."""
        if len(self.resize) == 2:
            h, w = self.resize
        else:
            side = self.resize[0]
            if height <= width:
                h, w = side, max(1, round(width * side / height))
            else:
                h, w = max(1, round(height * side / width)), side
        return max(h, self.crop[0]), max(w, self.crop[1])

    def crop_box(self, height: int, width: int) -> tuple[int, int]:
        """Top-left corner (y, x) of the centre crop in a ``height`` x ``width`` frame."""
        return (height - self.crop[0]) // 2, (width - self.crop[1]) // 2


def _open(path: str):
    av = require_av()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video not found: {path}")
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: not a readable video ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - PyAV fails on some empty containers this way
        raise VideoError(f"{path}: not a readable video ({type(err).__name__}: {err})") from None
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        container.close()
        raise VideoError(f"{path}: no video stream (streams: {kinds})")
    return container


def _info(path: str, container) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise VideoError(f"{path}: the video stream has no frame rate")
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    return VideoInfo(path=path, native_fps=float(rate), width=stream.codec_context.width,
                     height=stream.codec_context.height, duration=duration,
                     frames=int(stream.frames or 0))


def probe_video(path: Union[str, os.PathLike]) -> VideoInfo:
    """The header information of ``path``'s first video stream (decodes nothing).

    Raises FileNotFoundError when ``path`` is missing, :class:`VideoError` naming the file when
    it is not a readable container or has no video stream."""
    path = os.fspath(path)
    container = _open(path)
    try:
        return _info(path, container)
    finally:
        container.close()


def nearest_frame_indices(frame_times: Sequence[Union[Fraction, float]], fps: Union[Fraction, float],
                          end: Union[Fraction, float]) -> list[int]:
    """The resampling rule of this module on a list of frame times: for each output time
    ``k / fps < end``, the index of the nearest entry of ``frame_times`` (seconds, ascending;
    ties to the earlier frame). Floats are converted to exact fractions."""
    times = [Fraction(t) for t in frame_times]
    fps, end = Fraction(fps), Fraction(end)
    out, j, k = [], 0, 0
    while k / fps < end:
        t = k / fps
        while j + 1 < len(times) and abs(times[j + 1] - t) < abs(times[j] - t):
            j += 1
        out.append(j)
        k += 1
    return out


class _Resampler:
    """Streaming form of :func:`nearest_frame_indices`: feed ``(time, frame)`` in time order
    (exact fractions), receive the output frames that became decidable."""

    def __init__(self, fps: Optional[Fraction]):
        self.fps = fps
        self.k = 0
        self.prev = None          # (time, frame) of the last frame fed

    def push(self, time: Fraction, frame) -> list:
        if self.fps is None:
            return [frame]
        out = []
        prev = self.prev
        # Output times up to ``time`` are decided: later frames are further away.
        while self.k / self.fps <= time:
            t = self.k / self.fps
            if prev is not None and abs(prev[0] - t) <= abs(time - t):
                out.append(prev[1])
            else:
                out.append(frame)
            self.k += 1
        self.prev = (time, frame)
        return out

    def finish(self, end: Fraction) -> list:
        if self.fps is None or self.prev is None:
            return []
        out = []
        while self.k / self.fps < end:
            out.append(self.prev[1])
            self.k += 1
        return out


def iter_frames(path: Union[str, os.PathLike], *, fps: Optional[float] = None,
                transform: Optional[FrameTransform] = None, info_out: Optional[dict] = None
                ) -> Iterator[np.ndarray]:
    """Decode ``path`` as a stream of (H, W, 3) uint8 RGB frames, resampled to ``fps`` (None:
    every decoded frame) by the nearest-timestamp rule of this module, resized and
    centre-cropped by ``transform`` (None: as decoded).

    ``info_out``, when given, receives ``native_fps``, ``fps`` (the rate of the output frames),
    ``frames`` (output frames) and ``duration`` (seconds, first frame to the end of the last)
    once the stream is exhausted. Raises :class:`VideoError` naming the file for an unreadable
    file, a file without a video stream, a stream that breaks while decoding, or a video with
    no frame."""
    av = require_av()
    path = os.fspath(path)
    container = _open(path)
    try:
        info = _info(path, container)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        out_fps = float(fps) if fps is not None else info.native_fps
        resampler = _Resampler(None if fps is None else Fraction(fps))
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        native_period = 1 / Fraction(rate)
        size = box = None
        start = None
        last_time = None
        count = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is None or frame.time_base is None:
                    time = last_time + native_period if last_time is not None else Fraction(0)
                else:
                    time = frame.pts * Fraction(frame.time_base)
                if start is None:
                    start = time
                time -= start
                if last_time is not None and time <= last_time:
                    # Broken or repeated timestamps: keep the frames in decoding order.
                    time = last_time + Fraction(1, 1_000_000)
                last_time = time
                image = None
                if transform is not None:
                    if size is None:
                        size = transform.resized_size(frame.height, frame.width)
                        box = transform.crop_box(*size)
                    image = frame.reformat(width=size[1], height=size[0], format="rgb24",
                                           interpolation="BILINEAR").to_ndarray()
                    y, x = box
                    image = image[y:y + transform.crop[0], x:x + transform.crop[1]]
                else:
                    image = frame.to_ndarray(format="rgb24")
                for out in resampler.push(time, image):
                    count += 1
                    yield out
        except av.error.FFmpegError as err:
            raise VideoError(f"{path}: decoding failed ({err.strerror or err})") from None
        if last_time is None:
            raise VideoError(f"{path}: the video has no frame (zero length)")
        end = last_time + native_period
        for out in resampler.finish(end):
            count += 1
            yield out
        if info_out is not None:
            info_out.update(native_fps=info.native_fps, fps=out_fps, frames=count,
                            duration=float(end) if fps is not None else count / out_fps)
    finally:
        container.close()

"""Fixed training clips (AFSD's rule, which TAL-MTS trains with): each video is cut into windows
of ``window`` steps starting every ``stride`` steps, and a window becomes a training item only
when at least one action lies wholly inside it.

Everything here is in feature steps (one step per frame for frame videos).
"""
from __future__ import annotations

from typing import Sequence

import torch

from pytal.data.crop import clip_to_window

__all__ = ["clip_starts", "training_clips"]


def clip_starts(length: int, window: int, stride: int) -> list[int]:
    """Start steps of the windows over a video of ``length`` steps: ``0, stride, 2 stride, ...``
    up to ``length - window``, plus ``length - window`` itself when the strides miss it (the
    last window ends at the video's end); ``[0]`` when the video is not longer than a window."""
    if window < 1 or stride < 1:
        raise ValueError(f"clip window and stride must be >= 1, got {window} and {stride}")
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if (length - window) % stride:
        starts.append(length - window)
    return starts


def training_clips(lengths: Sequence[int], segments: Sequence[torch.Tensor], *, window: int,
                   stride: int, offset: float) -> list[tuple[int, int]]:
    """``(video index, start step)`` of every window (:func:`clip_starts`) holding at least one
    whole action: a segment (N, 2) in steps lies wholly inside the window starting at ``s``
    when it keeps all of its length clipped to ``[s - offset, s + window + offset]`` (the
    bounds the training crops clip segments to, :func:`pytal.data.crop.clip_to_window`)."""
    clips = []
    for video, (length, segs) in enumerate(zip(lengths, segments)):
        if not len(segs):
            continue
        for start in clip_starts(int(length), window, stride):
            _, whole = clip_to_window(segs, start, start + window, offset=offset, trunc_thresh=1.0)
            if bool(whole.any()):
                clips.append((video, start))
    return clips

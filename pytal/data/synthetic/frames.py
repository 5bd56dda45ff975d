"""Synthetic frame videos for :class:`~pytal.data.frames.FrameClipDataset`: tiny RGB (and
optionally flow) videos whose actions are learnable patterns.

    from pytal.data.synthetic.frames import write_frame_dataset
    ds = write_frame_dataset("/tmp/frames", num_videos=24, num_classes=3, size=32, fps=10, seed=0)

Writes ``<root>/annotations.json`` (ActivityNet-style, ``label_id`` on every annotation, every
video with ``fps``), ``<root>/frames/<video_id>.npy`` uint8 (T, size, size, 3) and, with
``flow=True``, ``<root>/flow/<video_id>.npy`` uint8 (T, size, size, 2). Background: grey noise.
During an action of class c a bright square of colour ``c % 3`` (a primary colour), side
``size / 4``, sits in row ``c // 3`` of the frame and slides right by one pixel per frame; its
flow is ``(160, 128)`` inside the square, 128 (no motion) elsewhere. The output is a
deterministic function of the arguments.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Union

import numpy as np

from pytal.data.synthetic import _annotation_json
from pytal.data.synthetic.layout import class_names, random_layout
from pytal.io.jsonio import write_json

__all__ = ["FrameVideos", "write_frame_dataset"]


@dataclass(frozen=True)
class FrameVideos:
    """What :func:`write_frame_dataset` wrote (``flow_dir`` "" without flow)."""

    root: str
    annotation_file: str
    frame_dir: str
    flow_dir: str
    class_names: list[str]
    fps: float
    size: int


def _video(spec, size: int, fps: float, rng: np.random.Generator, flow: bool):
    frames_n = int(round(spec.duration * fps))
    frames = rng.integers(70, 130, (frames_n, size, size, 3), dtype=np.uint8)
    motion = np.full((frames_n, size, size, 2), 128, np.uint8) if flow else None
    side = max(2, size // 4)
    for (start, end), c in zip(spec.segments.tolist(), spec.labels.tolist()):
        row = (c // 3) * side % (size - side + 1)
        first, last = int(round(start * fps)), min(frames_n, int(round(end * fps)))
        for t in range(first, last):
            x = (t - first) % (size - side + 1)
            frames[t, row:row + side, x:x + side] = 20
            frames[t, row:row + side, x:x + side, c % 3] = 250
            if motion is not None:
                motion[t, row:row + side, x:x + side, 0] = 160
    return frames, motion


def write_frame_dataset(root: Union[str, os.PathLike], *, num_videos: int = 24,
                        num_classes: int = 3, size: int = 32, fps: float = 10.0,
                        duration_range: tuple[float, float] = (16.0, 30.0),
                        action_seconds: tuple[float, float] = (2.0, 6.0),
                        actions_per_video: tuple[int, int] = (1, 3), val_fraction: float = 0.25,
                        flow: bool = False, seed: int = 0) -> FrameVideos:
    """Write the dataset (see the module docstring) under ``root``; return where it is."""
    if num_classes > 3 * max(1, size // max(2, size // 4)):
        raise ValueError(f"num_classes: at most {3 * (size // max(2, size // 4))} patterns fit "
                         f"frames of {size} pixels, got {num_classes}")
    rng = np.random.default_rng(seed)
    specs = random_layout(num_videos, num_classes, rng=rng, fps=fps,
                          duration_range=duration_range, actions_per_video=actions_per_video,
                          action_seconds=action_seconds, overlap_prob=0.0, multi_label_prob=0.0,
                          val_fraction=val_fraction)
    root = os.fspath(root)
    frame_dir = os.path.join(root, "frames")
    flow_dir = os.path.join(root, "flow") if flow else ""
    for folder in filter(None, (frame_dir, flow_dir)):
        os.makedirs(folder, exist_ok=True)
    for spec in specs:
        frames, motion = _video(spec, size, fps, rng, flow)
        _save(os.path.join(frame_dir, f"{spec.video_id}.npy"), frames)
        if motion is not None:
            _save(os.path.join(flow_dir, f"{spec.video_id}.npy"), motion)
    names = class_names(num_classes)
    annotation_file = os.path.join(root, "annotations.json")
    write_json(annotation_file, _annotation_json(specs, names))
    return FrameVideos(root, annotation_file, frame_dir, flow_dir, names, float(fps), size)


def _save(path: str, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` through a temporary file, so no half-written file remains."""
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)

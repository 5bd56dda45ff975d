"""Where the actions are: random layouts, or the layout of a real annotation file.

A layout is a list of :class:`VideoSpec`; times are in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from pytal.io.annotations import load_annotations
from pytal.io.jsonio import PathOrDict


@dataclass(frozen=True)
class VideoSpec:
    """One synthetic video: ``segments`` (N, 2) seconds, ``labels`` (N,) int64 class ids."""

    video_id: str
    subset: str
    duration: float
    fps: float
    segments: np.ndarray
    labels: np.ndarray


def class_names(num_classes: int) -> list[str]:
    """``class_00, class_01, ...``: sorted order equals id order."""
    width = max(2, len(str(num_classes - 1)))
    return [f"class_{i:0{width}d}" for i in range(num_classes)]


def random_layout(num_videos: int, num_classes: int, *, rng: np.random.Generator, fps: float,
                  duration_range: tuple[float, float], actions_per_video: tuple[int, int],
                  action_seconds: tuple[float, float], overlap_prob: float,
                  multi_label_prob: float, val_fraction: float) -> list[VideoSpec]:
    """Random videos split into ``training`` and ``validation`` subsets.

    Action lengths are log-uniform in ``action_seconds`` (at most 80% of the video); actions
    are placed without overlap, except that each may, with ``overlap_prob``, be placed anywhere;
    with ``multi_label_prob`` an action carries a second, different class on the same segment.
    """
    if num_videos < 1 or num_classes < 1:
        raise ValueError(f"need num_videos >= 1 and num_classes >= 1, got {num_videos}, {num_classes}")
    num_val = min(num_videos - 1, int(round(val_fraction * num_videos))) if num_videos > 1 else 0
    width = len(str(num_videos - 1))
    specs = []
    for v in range(num_videos):
        duration = float(rng.uniform(*duration_range))
        count = int(rng.integers(actions_per_video[0], actions_per_video[1] + 1))
        segments, labels = [], []
        for _ in range(count):
            length = math.exp(rng.uniform(math.log(action_seconds[0]), math.log(action_seconds[1])))
            length = min(length, 0.8 * duration)
            start = _place(segments, length, duration, rng, allow_overlap=rng.random() < overlap_prob)
            if start is None:
                continue
            label = int(rng.integers(num_classes))
            segments.append((start, start + length))
            labels.append(label)
            if num_classes > 1 and rng.random() < multi_label_prob:
                segments.append((start, start + length))
                labels.append((label + 1 + int(rng.integers(num_classes - 1))) % num_classes)
        order = np.argsort([s for s, _ in segments], kind="stable")
        specs.append(VideoSpec(
            video_id=f"video_{v:0{width}d}",
            subset="validation" if v >= num_videos - num_val else "training",
            duration=round(duration, 3), fps=float(fps),
            segments=np.round(np.asarray(segments, np.float64).reshape(-1, 2)[order], 3),
            labels=np.asarray(labels, np.int64)[order]))
    return specs


def _place(segments: list[tuple[float, float]], length: float, duration: float,
           rng: np.random.Generator, *, allow_overlap: bool, tries: int = 50) -> Optional[float]:
    """A start time for an action of ``length`` s, overlapping none of ``segments`` unless allowed."""
    for _ in range(tries):
        start = float(rng.uniform(0.0, duration - length))
        if allow_overlap or all(start >= e or start + length <= s for s, e in segments):
            return start
    return None


def layout_from_file(source: PathOrDict, *, rng: np.random.Generator, default_fps: float,
                     subsets: Optional[Sequence[str]] = None,
                     max_videos: Optional[int] = None) -> tuple[list[VideoSpec], list[str]]:
    """The videos of a real annotation file: ``(specs, class_names)``.

    Keeps durations, frame rates (``default_fps`` where the file has none), segments and labels.
    Class ids are indices in the sorted label names of the whole file. ``subsets`` selects
    subsets (default: all); ``max_videos`` keeps a seeded random sample of at most that many
    videos per subset.
    """
    annotations = load_annotations(source)
    names = annotations.label_names
    index = {n: i for i, n in enumerate(names)}
    chosen = list(subsets) if subsets is not None else annotations.subsets
    specs = []
    for subset in chosen:
        videos = annotations.subset(subset)
        if max_videos is not None and len(videos) > max_videos:
            keep = np.sort(rng.choice(len(videos), size=max_videos, replace=False))
            videos = [videos[i] for i in keep]
        for v in videos:
            specs.append(VideoSpec(
                video_id=v.video_id, subset=v.subset, duration=v.duration,
                fps=v.fps if v.fps is not None else float(default_fps),
                segments=v.segments,
                labels=np.asarray([index[n] for n in v.label_names], np.int64)))
    return specs, names

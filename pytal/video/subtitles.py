"""Detections as SRT subtitles, so any video player shows them over the video."""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Union

from pytal.io.atomic import atomic_write

__all__ = ["srt_time", "detections_srt", "write_srt"]


def srt_time(seconds: float) -> str:
    """``HH:MM:SS,mmm`` (negative times clamp to 0)."""
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def detections_srt(entries: Iterable[Mapping[str, Any]], *, min_score: float = 0.3,
                   max_entries: int = 50) -> str:
    """SRT text of one video's detections (``{"label", "score", "segment": [start, end]}``,
    seconds): the ``max_entries`` best scoring at least ``min_score``, in start-time order, each
    shown as ``label (score)`` from its start to its end. Overlapping actions overlap as
    subtitles too (players stack them)."""
    kept = sorted((e for e in entries if e["score"] >= min_score), key=lambda e: -e["score"])
    kept = sorted(kept[:max_entries], key=lambda e: (e["segment"][0], -e["score"]))
    blocks = []
    for n, e in enumerate(kept, 1):
        start, end = e["segment"]
        end = max(end, start + 0.001)
        blocks.append(f"{n}\n{srt_time(start)} --> {srt_time(end)}\n{e['label']} ({e['score']:.2f})\n")
    return "\n".join(blocks)


def write_srt(path: Union[str, os.PathLike], entries: Iterable[Mapping[str, Any]], **kwargs) -> str:
    """Write :func:`detections_srt` to ``path`` atomically; returns the path."""
    text = detections_srt(entries, **kwargs)
    atomic_write(path, lambda f: f.write(text))
    return os.fspath(path)

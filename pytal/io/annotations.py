"""ActivityNet-style annotation files: reading and validating (torch-free).

The layout (THUMOS14, ActivityNet v1.3, HACS, EPIC-Kitchens and MultiTHUMOS files converted by
ActionFormer-style code all use it; ``docs/data.md`` describes it)::

    {"version": ..., "taxonomy": ...,
     "database": {video_id: {"subset": str, "duration": seconds, ["fps": float],
                             "annotations": [{"segment": [start_s, end_s], "label": str,
                                              ["label_id": int]}, ...]}}}

Multi-label annotations may give ``"label"`` (and ``"label_id"``) as lists: such an annotation
becomes one row per label with the same segment. Overlapping segments are kept as they are.

Label spaces: a file may hold several labellings of the same segments (EPIC-KITCHENS-100's verb
and noun) as objects keyed by space, ``"label": {"verb": "open", "noun": "door"}`` (and
``"label_id": {"verb": 3, "noun": 8}``); ``label_space="verb"`` reads that space's value (a
string or a list, as above) in place of ``label`` / ``label_id``. Reading such a file without a
``label_space``, or a space an annotation lacks, is an :class:`AnnotationError`.
Which label id each name gets is :func:`pytal.data.resolve_labels`'s job.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from pytal.io import json_tables
from pytal.io.jsonio import PathOrDict, read_json


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file, the video and the field."""


@dataclass(frozen=True)
class VideoAnnotation:
    """One video of an annotation file.

    Attributes:
        video_id: key in the file's ``database``.
        subset: the video's subset name (e.g. ``"validation"``).
        duration: seconds, or ``None`` when the file has none (allowed only when asked).
        fps: the file's per-video frame rate, or ``None``.
        segments: (N, 2) float64 ``[start, end]`` in seconds.
        label_names: N label names, one per row of ``segments``.
        label_ids: (N,) int64 file-given ``label_id``s, or ``None`` unless every row has one.
    """

    video_id: str
    subset: str
    duration: Optional[float]
    fps: Optional[float]
    segments: np.ndarray
    label_names: tuple[str, ...]
    label_ids: Optional[np.ndarray]


@dataclass(frozen=True)
class Annotations:
    """A parsed annotation file: ``videos`` in file order, keyed by video id."""

    source: str
    videos: dict[str, VideoAnnotation]

    @property
    def subsets(self) -> list[str]:
        """Sorted subset names present in the file."""
        return sorted({v.subset for v in self.videos.values()})

    def subset(self, name: str) -> list[VideoAnnotation]:
        """The videos of subset ``name`` (file order); unknown names raise, listing the known ones."""
        videos = [v for v in self.videos.values() if v.subset == name]
        if not videos:
            raise AnnotationError(
                f"{self.source}: unknown subset {name!r}; known subsets: {self.subsets}")
        return videos

    @property
    def label_names(self) -> list[str]:
        """Sorted distinct label names of the whole file."""
        return sorted({n for v in self.videos.values() for n in v.label_names})


def load_annotations(source: PathOrDict, *, require_duration: bool = True,
                     subsets: Optional[Sequence[str]] = None,
                     label_space: Optional[str] = None) -> Annotations:
    """Parse and validate an ActivityNet-style annotation file (path or loaded dict).

    ``subsets`` restricts parsing to those subsets' videos (unknown names raise as
    :meth:`Annotations.subset` does). Raises :class:`AnnotationError` naming the file, video,
    field and expected value for anything malformed: no ``database``, a video without
    ``subset``, a non-positive or missing ``duration`` (when ``require_duration``), an
    annotation without ``label`` or whose ``segment`` is not two finite numbers with
    ``end >= start``. ``label_space`` picks one labelling of a file with several (module
    docstring).
    """
    data, where = read_json(source, what="annotation")
    database = _database(data, where)
    known = {_subset_of(where, video_id, entry) for video_id, entry in database.items()}
    if subsets is not None:
        unknown = [s for s in subsets if s not in known]
        if unknown:
            raise AnnotationError(f"{where}: unknown subset {unknown[0]!r}; known subsets: "
                                  f"{sorted(known)}")
    wanted = known if subsets is None else set(subsets)
    videos = {str(video_id): _parse_video(where, str(video_id), entry, require_duration, label_space)
              for video_id, entry in database.items() if entry["subset"] in wanted}
    return Annotations(source=where, videos=videos)


@dataclass(frozen=True)
class InstanceTable:
    """The annotated instances of one subset as flat arrays (what evaluation needs).

    Attributes:
        video_ids: the subset's videos in file order (with or without annotations).
        video: (G,) int64 index into ``video_ids`` of each instance.
        segments: (G, 2) float64 [start, end] seconds.
        labels: G label names.
    """

    source: str
    video_ids: list[str]
    video: np.ndarray
    segments: np.ndarray
    labels: list[str]


def load_instances(source: PathOrDict, subset: str, label_space: Optional[str] = None) -> InstanceTable:
    """The instances of ``subset`` of an annotation file; an unknown subset raises, listing the
    known ones.

    Every video needs a string ``subset`` (else it cannot be placed). The annotations of the
    videos of ``subset`` are validated like :func:`load_annotations` (durations are not
    required); those of other subsets are not read, so a malformed annotation elsewhere in the
    file is no error here.

    The compiled walker (:mod:`pytal.io.json_tables`) reads plain files; this function's
    Python loop is the specification, and runs for anything else (and for ``label_space``,
    which picks one labelling of a file with several, as :func:`load_annotations`).
    """
    data, where = read_json(source, what="annotation")
    database = _database(data, where)
    found = json_tables.instance_table(database, subset) if label_space is None else None
    if found is not None:
        video_ids, video, segments, labels = found
        return InstanceTable(source=where, video_ids=video_ids, video=video, segments=segments,
                             labels=labels)
    video_ids: list[str] = []
    counts: list[int] = []                          # rows per video
    coords: list[float] = []                        # start, end, start, end, ... (no tuples)
    labels: list[str] = []
    for video_id, entry in database.items():
        name = entry.get("subset") if isinstance(entry, dict) else None
        if name != subset:
            if type(name) is not str:
                _subset_of(where, video_id, entry)        # raises
            continue
        before = len(labels)
        for k, ann in enumerate(_annotation_list(where, video_id, entry)):
            if label_space is None and _plain_annotation(ann):     # fast path, common case
                coords += ann["segment"]
                labels.append(ann["label"])
                continue
            for seg, label, _ in _parse_annotation(where, str(video_id), k, ann, label_space):
                coords += seg
                labels.append(label)
        video_ids.append(str(video_id))
        counts.append(len(labels) - before)
    if not video_ids:
        known = sorted({entry["subset"] for entry in database.values()})
        raise AnnotationError(f"{where}: unknown subset {subset!r}; known subsets: {known}")
    return InstanceTable(source=where, video_ids=video_ids,
                         video=np.repeat(np.arange(len(video_ids)), counts),
                         segments=np.asarray(coords, np.float64).reshape(-1, 2), labels=labels)


def _database(data: Any, where: str) -> dict:
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise AnnotationError(
            f"{where}: missing top-level field 'database' (expected {{video_id: {{'subset', "
            f"'duration', 'annotations'}}}})")
    return database


def _subset_of(where: str, video_id: Any, entry: Any) -> str:
    subset = entry.get("subset") if isinstance(entry, dict) else None
    if not isinstance(subset, str):
        raise AnnotationError(f"{where}: video {video_id!r}: field 'subset' must be a string, "
                              f"got {subset!r}")
    return subset


def _annotation_list(where: str, video_id: Any, entry: dict) -> list:
    anns = entry.get("annotations", [])
    if not isinstance(anns, (list, tuple)):
        raise AnnotationError(f"{where}: video {video_id!r}: field 'annotations' must be a list, "
                              f"got {anns!r}")
    return anns


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool) that converts to a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:                             # an int beyond the float range
        return False


def _positive_number(value: Any) -> Optional[float]:
    return float(value) if _is_number(value) and value > 0 else None


def _parse_video(where: str, video_id: str, entry: dict, require_duration: bool,
                 label_space: Optional[str] = None) -> VideoAnnotation:
    duration = entry.get("duration")
    if duration is not None or require_duration:
        duration = _positive_number(duration)
        if duration is None:
            raise AnnotationError(f"{where}: video {video_id!r}: field 'duration' must be a "
                                  f"positive number of seconds, got {entry.get('duration')!r}")
    fps = entry.get("fps")
    if fps is not None:
        fps = _positive_number(fps)
        if fps is None:
            raise AnnotationError(f"{where}: video {video_id!r}: field 'fps' must be a positive "
                                  f"number, got {entry.get('fps')!r}")
    anns = _annotation_list(where, video_id, entry)
    segments: list[tuple[float, float]] = []
    names: list[str] = []
    ids: list[Optional[int]] = []
    for k, ann in enumerate(anns):
        for seg, name, label_id in _parse_annotation(where, video_id, k, ann, label_space):
            segments.append(seg)
            names.append(name)
            ids.append(label_id)
    has_ids = bool(ids) and None not in ids
    return VideoAnnotation(
        video_id=video_id, subset=entry["subset"], duration=duration, fps=fps,
        segments=np.asarray(segments, dtype=np.float64).reshape(-1, 2),
        label_names=tuple(names),
        label_ids=np.asarray(ids, dtype=np.int64) if has_ids else None)


_FLOAT_TYPES = (float, int)
_FLOAT_MAX = sys.float_info.max


def _plain_annotation(ann: Any) -> bool:
    """The common case, checked cheaply: ``{"segment": [s <= e], "label": str[, "label_id": int]}``."""
    if type(ann) is not dict:
        return False
    seg, label, label_id = ann.get("segment"), ann.get("label"), ann.get("label_id")
    return (type(seg) is list and len(seg) == 2 and type(seg[0]) in _FLOAT_TYPES
            and type(seg[1]) in _FLOAT_TYPES and -_FLOAT_MAX <= seg[0] <= seg[1] <= _FLOAT_MAX
            and type(label) is str and (label_id is None or (type(label_id) is int and label_id >= 0)))


def _in_label_space(where: str, video_id: str, k: int, ann: Any, label_space: Optional[str]) -> Any:
    """Annotation ``k`` with ``label`` / ``label_id`` of ``label_space`` in place of the objects
    keyed by space; unchanged when it has no spaces and none is asked for."""
    if not isinstance(ann, dict):
        return ann
    label, label_id = ann.get("label"), ann.get("label_id")
    spaced = isinstance(label, dict)
    if label_space is None:
        if spaced:
            raise AnnotationError(
                f"{where}: video {video_id!r}, annotation {k}: field 'label' has label spaces "
                f"{sorted(label)}; choose one (dataset.label_space)")
        return ann
    if not spaced or label_space not in label:
        raise AnnotationError(
            f"{where}: video {video_id!r}, annotation {k}: field 'label' must be an object with "
            f"label space {label_space!r}, got {label!r}")
    picked = dict(ann, label=label[label_space])
    picked.pop("label_id", None)
    if label_id is not None:
        if not isinstance(label_id, dict) or label_space not in label_id:
            raise AnnotationError(
                f"{where}: video {video_id!r}, annotation {k}: field 'label_id' must be an object "
                f"with label space {label_space!r} like 'label', got {label_id!r}")
        picked["label_id"] = label_id[label_space]
    return picked


def _parse_annotation(where: str, video_id: str, k: int, ann: Any,
                      label_space: Optional[str] = None,
                      ) -> list[tuple[tuple[float, float], str, Optional[int]]]:
    """``[((start, end), label_name, label_id or None)]``, one per label of annotation ``k``
    (of ``label_space``, when given)."""
    ann = _in_label_space(where, video_id, k, ann, label_space)
    if _plain_annotation(ann):
        return [((float(ann["segment"][0]), float(ann["segment"][1])), ann["label"],
                 ann.get("label_id"))]

    def fail(message: str) -> AnnotationError:
        return AnnotationError(f"{where}: video {video_id!r}, annotation {k}: {message}")

    if not isinstance(ann, dict):
        raise fail(f"expected an object with 'segment' and 'label', got {ann!r}")
    seg = ann.get("segment")
    if not (isinstance(seg, (list, tuple)) and len(seg) == 2 and _is_number(seg[0])
            and _is_number(seg[1])):
        raise fail(f"field 'segment' must be [start, end] in seconds (two finite numbers), got {seg!r}")
    start, end = float(seg[0]), float(seg[1])
    if end < start:
        raise fail(f"field 'segment' must have end >= start, got {seg!r}")
    labels = ann.get("label")
    label_ids = ann.get("label_id")
    if isinstance(labels, str):
        labels = [labels]
    if not (isinstance(labels, (list, tuple)) and labels and all(isinstance(x, str) for x in labels)):
        raise fail("field 'label' must be a string (or a non-empty list of strings for "
                   f"multi-label), got {ann.get('label')!r}")
    if label_ids is None:
        label_ids = [None] * len(labels)
    else:
        label_ids = list(label_ids) if isinstance(label_ids, (list, tuple)) else [label_ids]
        if len(label_ids) != len(labels) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in label_ids):
            raise fail(f"field 'label_id' must be a non-negative integer per label, "
                       f"got {ann.get('label_id')!r}")
    return [((start, end), name, i) for name, i in zip(labels, label_ids)]

"""Detection files (ActivityNet submission layout): reading them into flat arrays (torch-free).

The layout (``docs/data.md``)::

    {"version": ..., "results": {video_id: [{"label": str, "score": float,
                                             "segment": [start_s, end_s]}, ...]},
     "external_data": {}}

The compiled walker (:func:`pytal.io.json_tables.detection_table`) reads plain files; the
Python walker here is its specification and runs for anything else, with the same result and
the errors that name the field.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Hashable, Mapping

import numpy as np

from pytal.io import json_tables
from pytal.io.jsonio import PathOrDict, read_json


@dataclass(frozen=True)
class DetectionTable:
    """The D detections of a file in file order, as arrays.

    Attributes:
        source: the path, or ``"<prediction dict>"``.
        results: the file's ``results`` mapping (to name unknown labels or videos in messages).
        video: (D,) int64 ``video_index[video_id]``, -1 for a video not in ``video_index``.
        label: (D,) int64 ``label_index[label]``, -1 for a label not in ``label_index``.
        score: (D,) float64.
        segments: (D, 2) float64 [start, end] seconds.
    """

    source: str
    results: Mapping[Any, list]
    video: np.ndarray
    label: np.ndarray
    score: np.ndarray
    segments: np.ndarray


def load_detections(source: PathOrDict, label_index: Mapping[str, int],
                    video_index: Mapping[Any, int]) -> DetectionTable:
    """Read a detection file (path or loaded dict) into a :class:`DetectionTable`.

    Raises ValueError naming the file and field: no ``results`` mapping, a ``results`` value
    that is not a list, a detection without ``label``, a numeric ``score`` or a
    ``segment`` of two numbers (a numeric string is not a number), or a score or segment
    that is NaN or infinite.
    """
    data, where = read_json(source, what="prediction")
    results = data.get("results") if isinstance(data, Mapping) else None
    if not isinstance(results, Mapping):
        raise ValueError(f"{where}: missing field 'results' (expected {{video_id: [{{'label', "
                         "'score', 'segment'}, ...]}})")
    video, label, score, segments = (
        json_tables.detection_table(results, label_index, video_index)
        or _parse_results(results, label_index, video_index, where))
    if not (np.isfinite(score).all() and np.isfinite(segments).all()):
        raise ValueError(f"{where}: scores and segments must be finite numbers (NaN/inf found)")
    return DetectionTable(source=where, results=results, video=video, label=label, score=score,
                          segments=segments)


_LABEL, _SCORE, _SEGMENT = itemgetter("label"), itemgetter("score"), itemgetter("segment")


def _parse_results(results: Mapping[Any, list], label_index: Mapping[str, int],
                   video_index: Mapping[Any, int], where: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(video, label, score, segments)`` of the detections of ``results`` (lists of
    detection dicts) in file order: (D,) int64 indices into ``video_index`` and
    ``label_index`` (-1: not there), (D,) float64 scores, (D, 2) float64 seconds. The
    specification of :func:`pytal.io.json_tables.detection_table`; raises ValueError naming
    the field."""
    if not set(map(type, results.values())) <= {list}:                    # rare: look closer
        bad = [v for v, dets in results.items() if not isinstance(dets, list)]
        if bad:
            raise ValueError(f"{where}: results[{bad[0]!r}] must be a list of detections")
    counts = np.fromiter(map(len, results.values()), np.int64, count=len(results))
    detections = list(chain.from_iterable(results.values()))
    try:
        label, score, segments = _detection_arrays(detections, label_index)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):
        raise _detection_error(detections, where) from None
    video_of = np.fromiter(map(video_index.get, results, repeat(-1, len(results))),
                           np.int64, count=len(results))
    return np.repeat(video_of, counts), label, score, segments


def _detection_arrays(detections: list, label_index: Mapping[str, int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(label, score, segments)`` of D detection dicts: (D,) int64 class index (-1: not in
    ``label_index``), (D,) float64, (D, 2) float64. Raises KeyError, IndexError, TypeError or
    ValueError on anything malformed (:func:`_detection_error` says what)."""
    num = len(detections)
    segments = list(map(_SEGMENT, detections))
    if set(map(len, segments)) - {2}:
        raise ValueError("a segment is not [start, end]")
    label = np.fromiter(map(label_index.get, map(_LABEL, detections), repeat(-1, num)),
                        np.int64, count=num)
    scores = list(map(_SCORE, detections))
    coords = list(chain.from_iterable(segments))
    if not (_all_numbers(scores) and _all_numbers(coords)):
        raise TypeError("a score or segment bound is not a number")
    score = np.fromiter(scores, np.float64, count=num)
    segments = np.fromiter(coords, np.float64, count=2 * num)
    return label, score, segments.reshape(num, 2)


def _all_numbers(values: list) -> bool:
    """Whether every value is a real number (Python or numpy; not a numeric string, which
    ``np.fromiter`` would parse)."""
    return set(map(type, values)) <= {float, int} or all(
        isinstance(v, numbers.Real) for v in values)


def _detection_error(detections: list, where: str) -> ValueError:
    """The error for detections that :func:`_detection_arrays` rejected, naming the field."""
    for d in detections:
        try:
            d["label"], d["score"], d["segment"]
        except (KeyError, IndexError, TypeError) as err:
            return ValueError(f"{where}: every detection needs 'label', 'score' and 'segment' "
                              f"({err!r} in one of them)")
    if not all(isinstance(d["label"], Hashable) for d in detections):
        return ValueError(f"{where}: every detection's 'label' must be a class name")
    for d in detections:
        bounds = d["segment"] if isinstance(d["segment"], (list, tuple)) else []
        for field, value in [("score", d["score"]), *(("segment", v) for v in bounds)]:
            if not isinstance(value, numbers.Real):
                return ValueError(f"{where}: every detection needs a numeric 'score' and a "
                                  f"'segment' [start, end] in seconds (a {field} value is "
                                  f"{type(value).__name__} {value!r:.40})")
    return ValueError(f"{where}: every detection needs a numeric 'score' and a 'segment' "
                      "[start, end] in seconds")

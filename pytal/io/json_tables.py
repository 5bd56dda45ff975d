"""Flat arrays from loaded annotation and prediction JSON, by the compiled walkers of
``pytal._tables`` when they are built.

Evaluating 50,000 detections spends most of its time walking the loaded dicts in Python
(about 440 ns per detection). The compiled module walks them in C++, without torch (so
neither ``pytal.io`` nor ``pytal.evaluation`` imports it). It reads only the plain JSON case (exact dict / list /
str / float / int values) and returns None for anything else; the callers' Python walkers,
which accept the same inputs and raise the errors that name the field, are the specification
and handle every None. So both paths give the same arrays, and malformed input gets the same
message with or without the compiled module. ``use_compiled(False)`` switches it off (tests
compare the two; the evaluation benchmark times both).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import numpy as np

try:
    from pytal import _tables
    LOAD_ERROR: Optional[str] = None
except ImportError as exc:   # no compiler at install time, or a broken build
    _tables = None
    LOAD_ERROR = f"{type(exc).__name__}: {exc}"

_enabled = True


def built() -> bool:
    """True when ``pytal._tables`` was built and loads (``LOAD_ERROR`` says why not)."""
    return _tables is not None


def available() -> bool:
    """True when the compiled walkers were built and are switched on."""
    return _tables is not None and _enabled


@contextlib.contextmanager
def use_compiled(enabled: bool) -> Iterator[None]:
    """Context manager: inside the block the compiled walkers are used (``True``, when built)
    or not (``False``: every caller runs its Python walker). Process-wide; restored on exit."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def instance_table(database: Any, subset: Any
                   ) -> Optional[tuple[list[str], np.ndarray, np.ndarray, list[str]]]:
    """The annotated instances of ``subset``'s videos, one row per label (multi-label
    annotations give several rows with the same segment), for plain JSON.

    Returns ``(video_ids, video, segments, labels)``: the subset's video ids in file order,
    (G,) int64 index into them per row, (G, 2) float64 [start, end] seconds, G label names.
    None when the compiled walker is off, when no video is in ``subset``, or when any entry of
    the file is not of the form ``{"subset": str, ["annotations": [{"segment": [s, e]
    (finite, s <= e), "label": str | [str, ...], ["label_id": None | int >= 0 | [int >= 0,
    ...] (one per label)]}]]}`` with exact JSON types (dict, list, str, float, int).
    """
    if not available():
        return None
    found = _tables.instance_table(database, subset)
    if found is None:
        return None
    video_ids, video, coords, labels = found
    return (video_ids, np.frombuffer(video, np.int64),
            np.frombuffer(coords, np.float64).reshape(-1, 2), labels)


def detection_table(results: Any, label_index: Any, video_index: Any
                    ) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The D detections of a submission's ``results`` (``{video_id: [{"label", "score",
    "segment"}]}``) in file order, for the plain JSON case.

    Returns ``(video, label, score, segments)``: (D,) int64 ``video_index[video_id]`` and
    ``label_index[label]`` (-1 when absent), (D,) float64 scores, (D, 2) float64 segments
    (seconds). None when the compiled walker is off or anything is not plain: a non-list value,
    a detection that is not a dict with a str ``label``, a number ``score`` and a ``segment``
    list of two numbers.
    """
    if not available():
        return None
    found = _tables.detection_table(results, label_index, video_index)
    if found is None:
        return None
    video, label, score, segments = found
    return (np.frombuffer(video, np.int64), np.frombuffer(label, np.int64),
            np.frombuffer(score, np.float64), np.frombuffer(segments, np.float64).reshape(-1, 2))

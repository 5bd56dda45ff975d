"""Hypothesis strategies for annotation and detection documents, well-formed and mutated, and
the oracle that runs both JSON walkers (compiled ``pytal._tables`` and the Python one) on a
document. Shared by tests/test_properties_json.py and tools/fuzz_json_tables.py.
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from pytal.io import json_tables, load_detections, load_instances

SUBSETS = ("s", "t")
LABELS = ("A", "B", "c", "")
VIDEO_IDS = ("v1", "v2", "v3", "")

# Numbers JSON can hold, biased towards ties, zero signs, the 2**53 boundary of exact doubles,
# huge ints and non-finite floats (json.loads accepts NaN / Infinity).
_EDGE_NUMBERS = (0, 1, -1, 0.0, -0.0, 0.5, 1.5, 2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 63,
                 -(2 ** 63) - 1, 10 ** 400, -(10 ** 400), 1e308, -1e308, 5e-324, math.inf,
                 -math.inf, math.nan)
numbers = st.one_of(st.sampled_from(_EDGE_NUMBERS), st.integers(-3, 3),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
finite_numbers = st.one_of(st.integers(-5, 5), st.integers(-(2 ** 53), 2 ** 53),
                           st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from((0.0, -0.0)))
# Values of a type no field expects (what a mistyped or hostile file holds).
other_values = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.just([]), st.just({}),
                         st.just((1, 2)), st.sampled_from((np.float64(1.0), np.int64(2))))
label_names = st.sampled_from(LABELS)
_label_ids = st.one_of(st.integers(0, 9), st.integers(0, 2 ** 70))
_annotation_lists = st.lists(st.deferred(lambda: plain_annotations()), max_size=4)


@st.composite
def plain_annotations(draw) -> dict:
    """A well-formed annotation: finite ``start <= end``, one label or a list of them, label ids
    absent, None, or one int >= 0 per label."""
    start = draw(finite_numbers)
    end = draw(st.one_of(st.just(start), finite_numbers.filter(lambda e: e >= start)))
    labels = draw(st.one_of(label_names, st.lists(label_names, min_size=1, max_size=3)))
    count = 1 if isinstance(labels, str) else len(labels)
    ann = {"segment": [start, end], "label": labels}
    ids = draw(st.sampled_from(("absent", "none", "list", "int") if count == 1 else
                               ("absent", "none", "list")))
    if ids == "none":
        ann["label_id"] = None
    elif ids == "int":
        ann["label_id"] = draw(_label_ids)
    elif ids == "list":
        ann["label_id"] = [draw(_label_ids) for _ in range(count)]
    return ann


_video_id_lists = st.lists(st.text(max_size=4), unique=True, max_size=5)


@st.composite
def plain_databases(draw) -> dict:
    """A well-formed ``database``: every video has a str subset and a list of plain annotations."""
    database = {}
    for video_id in draw(_video_id_lists):
        entry = {"subset": draw(st.sampled_from(SUBSETS)), "duration": 10.0}
        if draw(st.integers(0, 4)):
            entry["annotations"] = draw(_annotation_lists)
        database[video_id] = entry
    return database


def _mutations(value: Any) -> st.SearchStrategy:
    """One change to a JSON value: replaced, wrapped, truncated, extended, retyped."""
    options = [numbers, other_values, st.just([value]), st.just(OrderedDict(x=value))]
    if isinstance(value, list):
        options += [st.just(value[:-1]), st.just(value + value[-1:]), st.just(tuple(value)),
                    st.just(value[::-1])]
    if isinstance(value, dict):
        options += [st.just(OrderedDict(value))]
    return st.one_of(options)


@st.composite
def mutated(draw, document: Any, depth: int = 0) -> Any:
    """``document`` with a few random paths replaced by :func:`_mutations` of their value,
    deleted (dict keys) or left alone."""
    if depth > 6 or not draw(st.integers(0, 3)):
        return document
    if isinstance(document, (dict, list)) and document and draw(st.booleans()):
        keys = list(document.keys()) if isinstance(document, dict) else range(len(document))
        key = draw(st.sampled_from(list(keys)))
        copy = dict(document) if isinstance(document, dict) else list(document)
        if isinstance(copy, dict) and draw(st.integers(0, 4)) == 0:
            del copy[key]
        else:
            copy[key] = draw(mutated(copy[key], depth + 1))
        return copy
    return draw(_mutations(document))


databases = st.one_of(plain_databases(), plain_databases().flatmap(mutated))


_detections = st.builds(
    lambda label, score, segment, extra: {"label": label, "score": score, "segment": segment,
                                          **extra},
    label_names, finite_numbers, st.lists(finite_numbers, min_size=2, max_size=2),
    st.one_of(st.just({}), st.just({"extra": None})))
# A well-formed submission ``results``: {video_id: [{"label", "score", "segment"}]}.
plain_results = st.dictionaries(st.sampled_from(VIDEO_IDS + ("elsewhere",)),
                                st.lists(_detections, max_size=4), max_size=4)
results_documents = st.one_of(plain_results, plain_results.flatmap(mutated))
ground_truth = {"v1": {"subset": "s", "annotations": [{"segment": [0, 1], "label": "A"},
                                                      {"segment": [2, 5], "label": "B"}]},
                "v2": {"subset": "s", "annotations": [{"segment": [1, 3], "label": "A"}]},
                "v3": {"subset": "t", "annotations": [{"segment": [0, 2], "label": "c"}]}}


def outcome(run: Callable[[], Any]) -> tuple:
    """``("ok", value)`` or ``("raised", type, message)``, with warnings recorded as values."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = run()
        except Exception as exc:                          # noqa: BLE001: compared below
            return ("raised", type(exc), str(exc))
    return ("ok", value, [str(w.message) for w in caught])


def _arrays(*arrays: np.ndarray) -> tuple:
    """Arrays as comparable values: dtype, shape and bytes (so -0.0 differs from 0.0)."""
    return tuple((a.dtype.str, a.shape, a.tobytes()) for a in arrays)


def instances(database: Any, subset: str, compiled: bool) -> tuple:
    """The outcome of ``load_instances`` on ``{"database": database}``."""
    def run():
        with json_tables.use_compiled(compiled):
            t = load_instances({"database": database}, subset)
        return t.video_ids, t.labels, _arrays(t.video, t.segments)
    return outcome(run)


# The indices of ground_truth's subset "s" (what evaluation gives the detection reader).
LABEL_INDEX, VIDEO_INDEX = {"A": 0, "B": 1}, {"v1": 0, "v2": 1}


def predictions(results: Any, compiled: bool) -> tuple:
    """The outcome of ``load_detections`` on ``{"results": results}`` with the label and video
    indices of :data:`ground_truth`'s subset ``s``."""
    def run():
        with json_tables.use_compiled(compiled):
            t = load_detections({"results": results}, LABEL_INDEX, VIDEO_INDEX)
        return _arrays(t.video, t.label, t.score, t.segments)
    return outcome(run)


def check_walkers_agree(compiled: tuple, python: tuple, expected_errors: tuple) -> None:
    """Both walkers gave the same result or the same error, and an error is one of
    ``expected_errors`` (the message names the field), never a stray TypeError or
    OverflowError."""
    assert compiled == python, (compiled, python)
    if compiled[0] == "raised":
        assert issubclass(compiled[1], expected_errors), compiled

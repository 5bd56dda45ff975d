"""Property tests of the JSON readers: on random and mutated annotation and detection documents
the compiled walker (``pytal._tables``) and the Python walker (the specification) give exactly
the same arrays, or raise the same error, and that error is the documented one."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from json_documents import (LABEL_INDEX, SUBSETS, VIDEO_INDEX, check_walkers_agree, databases,
                            instances, plain_databases, plain_results, predictions,
                            results_documents)
from pytal.io import AnnotationError, json_tables

pytestmark = pytest.mark.skipif(
    not json_tables.built(),
    reason=f"pytal._tables is not built ({json_tables.LOAD_ERROR}); .ci/run requires it")

FAST = settings(max_examples=examples(1.5))


@FAST
@given(database=databases, subset=st.sampled_from(SUBSETS + ("unknown",)))
def test_annotation_walkers_agree(database, subset):
    check_walkers_agree(instances(database, subset, True), instances(database, subset, False),
                        (AnnotationError,))


@FAST
@given(database=plain_databases(), subset=st.sampled_from(SUBSETS))
def test_plain_annotations_take_the_compiled_path(database, subset):
    """A well-formed document (ints beyond 2**53 aside) is read by the compiled walker."""
    found = json_tables.instance_table(database, subset)
    in_subset = [e for e in database.values() if e["subset"] == subset]
    big = any(abs(x) > 2 ** 53 for e in in_subset for a in e.get("annotations", [])
              for x in a["segment"] if isinstance(x, int))
    assert (found is not None) == (bool(in_subset) and not big)


@FAST
@given(results=results_documents)
def test_detection_walkers_agree(results):
    check_walkers_agree(predictions(results, True), predictions(results, False), (ValueError,))


@FAST
@given(results=plain_results)
def test_plain_detections_take_the_compiled_path(results):
    big = any(isinstance(x, int) and abs(x) > 2 ** 53 for dets in results.values()
              for d in dets for x in [d["score"], *d["segment"]])
    found = json_tables.detection_table(results, LABEL_INDEX, VIDEO_INDEX)
    assert (found is not None) == (not big)


@FAST
@given(database=databases, subset=st.sampled_from(SUBSETS))
def test_annotation_walkers_agree_after_a_json_round_trip(database, subset):
    """What json.loads gives for the document's text (tuples become lists, big ints stay)."""
    try:
        text = json.dumps(database, default=float)
    except (TypeError, ValueError):
        return
    loaded = json.loads(text)
    check_walkers_agree(instances(loaded, subset, True), instances(loaded, subset, False),
                        (AnnotationError,))


@pytest.mark.parametrize("segment", [[0, 10 ** 400], [-(10 ** 400), 0], [0, 2 ** 1030]])
def test_an_int_beyond_float_range_is_an_annotation_error(segment):
    database = {"a": {"subset": "s", "annotations": [{"segment": segment, "label": "x"}]}}
    for compiled in (True, False):
        outcome = instances(database, "s", compiled)
        assert outcome[0] == "raised" and outcome[1] is AnnotationError, outcome
        assert "two finite numbers" in outcome[2]


def test_an_int_beyond_float_range_in_a_detection_is_a_value_error():
    for value in (10 ** 400, -(10 ** 400)):
        got = predictions({"v1": [{"label": "A", "score": value, "segment": [0, 1]}]}, True)
        assert got[0] == "raised" and got[1] is ValueError and "numeric 'score'" in got[2]


@pytest.mark.parametrize("detection", [np.float64(1.0), np.int64(2), np.array([0.5, 1.0]),
                                       "label", 3])
def test_a_detection_that_is_not_a_dict_is_a_value_error(detection):
    """Found by tools/fuzz_json_tables.py: a numpy scalar detection raised IndexError."""
    results = {"v1": [{"label": "A", "score": 0.5, "segment": [0, 1]}, detection]}
    for compiled in (True, False):
        got = predictions(results, compiled)
        assert got[0] == "raised" and got[1] is ValueError, got
        assert "every detection needs 'label', 'score' and 'segment'" in got[2]

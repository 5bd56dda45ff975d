"""Shared test configuration: tests marked ``cuda`` are skipped without a usable GPU,
``extension``-marked tests are skipped (with the reason) when pytal._C is not built, and the
hypothesis profiles of the property tests."""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import pytal

# Property tests: "default" explores new random examples on every run (failures are replayed
# from .hypothesis/ first); "ci" is derandomized (the same examples on every run, no database);
# "long" tries 50x more examples (HYPOTHESIS_PROFILE=long, for a deliberate search).
settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("ci", settings.get_profile("default"), derandomize=True,
                          database=None, print_blob=True)
settings.register_profile("long", settings.get_profile("default"), max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def examples(share: float) -> int:
    """``share`` of the profile's example count (at least 5): for the slower property tests."""
    return max(5, int(settings.default.max_examples * share))


def pytest_collection_modifyitems(config, items):
    no_cuda = pytest.mark.skip(reason="needs a CUDA device")
    no_ext = pytest.mark.skip(
        reason=f"pytal._C not built: {pytal.ops.backend_info()['load_error']}")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "extension" in item.keywords and not pytal.ops.extension_loaded():
            item.add_marker(no_ext)

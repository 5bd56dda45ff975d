"""Shared test configuration: tests marked ``cuda`` are skipped without a usable GPU,
``extension``-marked tests are skipped (with the reason) when pytal._C is not built, and the
hypothesis profiles of the property tests.

``PYTAL_REQUIRE_EXTENSION=1`` in the environment turns every skip whose reason says a compiled
module is "not built" (``pytal._C`` or ``pytal._tables``, by marker, ``skipif`` or an inline
``pytest.skip``) into a failure, so that a broken build cannot pass as a run of skips.
``.ci/run`` sets it.
"""
from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import pytal

NOT_BUILT = "not built"


def require_extension() -> bool:
    """Whether ``PYTAL_REQUIRE_EXTENSION`` asks for "not built" skips to fail."""
    return os.environ.get("PYTAL_REQUIRE_EXTENSION", "").strip() not in ("", "0")


def pytest_report_header(config):
    if require_extension():
        return "PYTAL_REQUIRE_EXTENSION=1: skips for a compiled module that is not built fail"
    return None
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
        reason=f"pytal._C {NOT_BUILT}: {pytal.ops.backend_info()['load_error']}")
    for item in items:
        if item.get_closest_marker("cuda") and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if item.get_closest_marker("extension") and not pytal.ops.extension_loaded():
            item.add_marker(no_ext)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and require_extension()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if NOT_BUILT in reason:
        report.outcome = "failed"
        report.longrepr = (f"PYTAL_REQUIRE_EXTENSION is set, but this test was skipped: {reason}")

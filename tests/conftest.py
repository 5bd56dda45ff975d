"""Shared test configuration: tests marked ``cuda`` are skipped without a usable GPU, and
``extension``-marked tests are skipped (with the reason) when pytal._C is not built.

``PYTAL_REQUIRE_EXTENSION=1`` in the environment turns every skip whose reason says a compiled
module is "not built" (``pytal._C`` or ``pytal._tables``, by marker, ``skipif`` or an inline
``pytest.skip``) into a failure, so that a broken build cannot pass as a run of skips.
``.ci/run`` sets it.
"""
from __future__ import annotations

import os

import pytest
import torch

import pytal

NOT_BUILT = "not built"


def require_extension() -> bool:
    """Whether ``PYTAL_REQUIRE_EXTENSION`` asks for "not built" skips to fail."""
    return os.environ.get("PYTAL_REQUIRE_EXTENSION", "").strip() not in ("", "0")


def pytest_report_header(config):
    if require_extension():
        return "PYTAL_REQUIRE_EXTENSION=1: skips for a compiled module that is not built fail"
    return None


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

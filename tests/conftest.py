"""Shared test configuration: tests marked ``cuda`` are skipped without a usable GPU, and
``extension``-marked tests are skipped (with the reason) when pytal._C is not built."""
from __future__ import annotations

import pytest
import torch

import pytal


def pytest_collection_modifyitems(config, items):
    no_cuda = pytest.mark.skip(reason="needs a CUDA device")
    no_ext = pytest.mark.skip(
        reason=f"pytal._C not built: {pytal.ops.backend_info()['load_error']}")
    for item in items:
        if item.get_closest_marker("cuda") and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if item.get_closest_marker("extension") and not pytal.ops.extension_loaded():
            item.add_marker(no_ext)

"""pytest-benchmark microbenchmarks of trident_decode (run with ``pytest benchmarks/``)."""
from __future__ import annotations

import pytest
import torch

import pytal
from benchmarks.trident_decode import make_inputs, step
from pytal.ops import trident_decode

SHAPE = (2, 20, 1024, 17)  # small THUMOS-like (B, Cb, T, K)
BACKENDS = ["reference", pytest.param("extension", marks=pytest.mark.skipif(
    not pytal.ops.extension_loaded(), reason="pytal._C not built"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward(benchmark, backend):
    inputs = [x.detach() for x in make_inputs(SHAPE, "cpu")]
    with torch.no_grad():
        benchmark(trident_decode, *inputs, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_backward(benchmark, backend):
    inputs = make_inputs(SHAPE, "cpu")
    benchmark(step, inputs, backend)

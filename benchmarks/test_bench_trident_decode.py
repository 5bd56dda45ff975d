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


def other_backend(backend):
    """What the timed backend is checked against: the other one (a second reference run
    when the extension is not built)."""
    return "extension" if backend == "reference" and pytal.ops.extension_loaded() else "reference"


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward(benchmark, backend):
    inputs = [x.detach() for x in make_inputs(SHAPE, "cpu")]
    with torch.no_grad():
        out = benchmark(trident_decode, *inputs, backend=backend)
        want = trident_decode(*inputs, backend=other_backend(backend))
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_backward(benchmark, backend):
    inputs = make_inputs(SHAPE, "cpu")
    benchmark(step, inputs, backend)
    grads = []
    for b in (backend, other_backend(backend)):         # one clean step each
        for x in inputs:
            x.grad = None
        step(inputs, b)
        grads.append([x.grad.clone() for x in inputs])
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

"""pytest-benchmark microbenchmarks of pytal.ops.gmg (not part of the default test run:
``pytest benchmarks/test_bench_gmg.py``). Small shapes so that they finish in seconds."""
from __future__ import annotations

import pytest
import torch

import pytal
from benchmarks.gmg import make_inputs, step

BACKENDS = ["reference", pytest.param("extension", marks=pytest.mark.skipif(
    not pytal.ops.backend_info()["ops"].get("gmg"), reason="pytal._C has no gmg kernel"))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("B,C,T", [(2, 256, 192), (2, 512, 288)])
def test_gmg_cpu(benchmark, backend, backward, B, C, T):
    inputs = make_inputs(B, C, T, requires_grad=True)
    out = benchmark(step, inputs, backend, "paper", backward)
    assert_other_backend_agrees(inputs, out, backend, backward)


def assert_other_backend_agrees(inputs, out, backend, backward):
    """The timed call's output (and gradients) against the other backend's on the same
    inputs (the extension against the reference; the reference against the extension when
    it is built, else against a second reference call)."""
    grads = [t.grad.clone() for t in inputs] if backward else []
    other = "extension" if backend == "reference" and pytal.ops.backend_info()["ops"].get("gmg") \
        else "reference"
    want = step(inputs, other, "paper", backward)
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4)
    for got, t in zip(grads, inputs):
        torch.testing.assert_close(got, t.grad, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_gmg_cuda(benchmark, backend, backward):
    inputs = make_inputs(2, 512, 2304, device="cuda", requires_grad=True)

    def run():
        out = step(inputs, backend, "paper", backward)
        torch.cuda.synchronize()
        return out

    out = benchmark(run)
    assert_other_backend_agrees(inputs, out, backend, backward)

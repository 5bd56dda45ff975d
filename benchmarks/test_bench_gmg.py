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
    benchmark(step, inputs, backend, "paper", backward)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_gmg_cuda(benchmark, backend, backward):
    inputs = make_inputs(2, 512, 2304, device="cuda", requires_grad=True)

    def run():
        step(inputs, backend, "paper", backward)
        torch.cuda.synchronize()

    benchmark(run)

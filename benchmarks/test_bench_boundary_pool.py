"""pytest-benchmark microbenchmarks of boundary_pool (not part of the default test run):
``pytest benchmarks/test_bench_boundary_pool.py``. Small shapes; ``python -m
benchmarks.boundary_pool`` measures AFSD's THUMOS and ActivityNet shapes."""
from __future__ import annotations

import pytest
import torch

import pytal
from benchmarks.boundary_pool import make_inputs, scan_baseline

# Explicit skips: tests/conftest.py, which skips by marker, does not cover benchmarks/.
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]
pytestmark = [pytest.mark.extension,
              pytest.mark.skipif(not pytal.ops.extension_loaded(), reason="pytal._C not built")]
# (T, K, longest region as a fraction of T): short regions (scan) and long ones (sparse table)
SHAPES = {"short": (256, 256, 0.1), "long": (768, 768, 1.0)}


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("impl", ["extension", "baseline", "reference"])
def test_forward(benchmark, device, shape, impl):
    length, num, fraction = SHAPES[shape]
    x, seg = make_inputs(1, 32, length, num, fraction, device)
    if impl == "baseline":
        fn = lambda: scan_baseline(x, seg)  # noqa: E731
    else:
        fn = lambda: pytal.ops.boundary_pool(x, seg, backend=impl)  # noqa: E731

    def run():
        out = fn()
        _sync(device)
        return out

    out = benchmark(run)
    want = pytal.ops.boundary_pool(x.cpu(), seg.cpu(), backend="reference")
    torch.testing.assert_close(out.cpu(), want)                 # max pooling: exact


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("impl", ["extension", "reference"])
def test_forward_backward(benchmark, device, shape, impl):
    length, num, fraction = SHAPES[shape]
    x, seg = make_inputs(1, 32, length, num, fraction, device)

    def run():
        xg = x.detach().requires_grad_()
        pytal.ops.boundary_pool(xg, seg, backend=impl).sum().backward()
        _sync(device)
        return xg.grad

    grad = benchmark(run)
    xr = x.detach().cpu().requires_grad_()
    pytal.ops.boundary_pool(xr, seg.cpu(), backend="reference").sum().backward()
    torch.testing.assert_close(grad.cpu(), xr.grad)

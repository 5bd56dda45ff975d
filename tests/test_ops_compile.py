"""Every differentiable op compiles with ``torch.compile(fullgraph=True)`` on the extension
(the backend choice and the checks add no graph break), forward and backward match eager,
and importing pytal.ops does not import torch._dynamo."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import pytal

pytestmark = pytest.mark.extension


def _gmg_params(channels, generator):
    shapes = [(2, channels)] * 4 + [(channels, 3), (channels,), (channels,), (channels,)]
    return [torch.randn(s, generator=generator) for s in shapes]


def _cases():
    g = torch.Generator().manual_seed(0)
    seg4 = torch.tensor([[[0.0, 3.0, 5.0, 9.0], [2.0, 2.0, 0.0, 15.0], [7.5, 12.2, 1.0, 1.0]]] * 2)
    idx = (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2]), torch.tensor([0, 15, 7]))
    return {
        "boundary_pool": (lambda x: pytal.ops.boundary_pool(x, seg4),
                          torch.randn(2, 4, 16, generator=g)),
        "segment_pool_max": (lambda x: pytal.ops.segment_pool(x, seg4[..., :2], mode="max"),
                             torch.randn(2, 4, 16, generator=g)),
        "segment_pool_mean": (lambda x: pytal.ops.segment_pool(x, seg4[..., 2:], mode="mean"),
                              torch.randn(2, 4, 16, generator=g)),
        "gmg": (lambda x, p=_gmg_params(4, g): pytal.ops.gmg(x, *p),
                torch.randn(2, 4, 16, generator=g)),
        "trident_decode": (lambda x, o=torch.randn(2, 16, 2, 5, generator=g):
                           pytal.ops.trident_decode(x, x * 0.5, o),
                           torch.randn(2, 3, 16, generator=g)),
        "trident_decode_index": (lambda x, o=torch.randn(2, 16, 2, 5, generator=g):
                                 pytal.ops.trident_decode(x, x * 0.5, o, idx),
                                 torch.randn(2, 3, 16, generator=g)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_fullgraph_compile_matches_eager(name):
    fn, x = _cases()[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    results = []
    for f in (fn, compiled):
        xg = x.clone().requires_grad_()
        out = f(xg)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out, xg.grad))
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_import_does_not_load_dynamo():
    code = "import sys, pytal.ops; print('torch._dynamo' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.strip() == "False"

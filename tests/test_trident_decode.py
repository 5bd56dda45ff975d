"""trident_decode: reference against the formula, extension against the reference (forward,
the three gradients, index form), gradcheck, opcheck, torch.compile, bad inputs, empties."""
from __future__ import annotations

import math

import pytest
import torch

import pytal
from pytal.ops import trident_decode
from pytal.ops.reference import trident_decode as ref

# Tolerances: float32 and float64 tight. float16 / bfloat16 kernels and reference both
# accumulate in float32 and round once, so they differ by about one unit in the last place
# of the output (fp16: 2^-10 relative, bf16: 2^-7 relative) plus float32 summation order.
FP32 = dict(rtol=1e-5, atol=1e-5)
HALF_TOL = {torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def make_inputs(b, c, t, k, *, dtype=torch.float32, device="cpu", scale=3.0, seed=0,
                requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    s = (torch.randn(b, c, t, generator=gen, dtype=torch.float64) * scale)
    e = (torch.randn(b, c, t, generator=gen, dtype=torch.float64) * scale)
    o = (torch.randn(b, t, 2, k, generator=gen, dtype=torch.float64) * scale)
    return [x.to(device=device, dtype=dtype).requires_grad_(requires_grad) for x in (s, e, o)]


def naive_decode(s, e, o):
    """Per-element loops over the formula of docs/ops.md, in float64: an independent check of
    the reference."""
    b_, c_, t_ = s.shape
    k = o.shape[-1]
    out = torch.zeros(b_, t_, c_, 2, dtype=torch.float64)
    for b in range(b_):
        for t in range(t_):
            for c in range(c_):
                zl = [(float(s[b, c, t - (k - 1) + i]) if t - (k - 1) + i >= 0 else 0.0)
                      + float(o[b, t, 0, i]) for i in range(k)]
                zr = [(float(e[b, c, t + i]) if t + i < t_ else 0.0) + float(o[b, t, 1, i])
                      for i in range(k)]
                for side, z, dist in ((0, zl, [k - 1 - i for i in range(k)]),
                                      (1, zr, list(range(k)))):
                    m = max(z)
                    w = [math.exp(x - m) for x in z]
                    out[b, t, c, side] = sum(wi * di for wi, di in zip(w, dist)) / sum(w)
    return out


def grads(fn, inputs, grad_out):
    out = fn(*inputs)
    return (out, *torch.autograd.grad(out, inputs, grad_out))


def assert_all_close(got, want, **tol):
    """``torch.testing.assert_close`` on each pair of two equally long tensor sequences."""
    assert len(got) == len(want)
    for x, w in zip(got, want):
        torch.testing.assert_close(x, w, **tol)


ext = pytest.mark.extension
SHAPES = [  # (B, Cb, T, K): K from 1 to 33, T smaller than K, Cb = 1 and larger
    (2, 3, 20, 1), (1, 1, 7, 2), (2, 2, 16, 5), (1, 4, 40, 17), (2, 1, 5, 17),
    (1, 2, 3, 33), (1, 3, 50, 33), (1, 1, 1, 4),
]


@pytest.mark.parametrize("shape", [(1, 2, 6, 3), (2, 1, 3, 5), (1, 2, 9, 1)])
def test_reference_follows_formula(shape):
    s, e, o = make_inputs(*shape, dtype=torch.float64)
    torch.testing.assert_close(ref.trident_decode(s, e, o), naive_decode(s, e, o))


@ext
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_grads_match_reference(shape):
    inputs = make_inputs(*shape, requires_grad=True)
    g = torch.randn(shape[0], shape[2], shape[1], 2, generator=torch.Generator().manual_seed(1))
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    assert_all_close(got, want, **FP32)


@ext
def test_strided_inputs_and_partial_losses():
    """Heads often give (B, T, Cb) logits viewed as (B, Cb, T); losses often use one side."""
    b, c, t, k = 2, 3, 15, 6
    s, e, o = make_inputs(b, c, t, k)
    views = [s.transpose(1, 2).contiguous().requires_grad_(),
             e.transpose(1, 2).contiguous().requires_grad_(),
             o.permute(0, 1, 3, 2).contiguous().requires_grad_()]

    def loss(backend):
        out = trident_decode(views[0].transpose(1, 2), views[1].transpose(1, 2),
                             views[2].permute(0, 1, 3, 2), backend=backend)
        return (out[..., 0] * torch.arange(c)).sum() + out[:, ::2, :, 1].sum()

    want = torch.autograd.grad(loss("reference"), views)
    got = torch.autograd.grad(loss("extension"), views)
    assert_all_close(got, want, **FP32)


@ext
@pytest.mark.parametrize("scale", [50.0, 1e3])
def test_large_logits_stay_finite(scale):
    shape = (1, 3, 24, 17)
    inputs = make_inputs(*shape, scale=scale, seed=3, requires_grad=True)
    with torch.no_grad():  # exactly +-50 as well as beyond
        inputs[0][0, 0, :6] = 50.0
        inputs[1][0, 1, -6:] = -50.0
    g = torch.randn(1, 24, 3, 2, generator=torch.Generator().manual_seed(2))
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    for w, x in zip(want, got):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, w, rtol=1e-4, atol=1e-4)


@ext
def test_many_classes():
    shape = (1, 300, 24, 17)
    inputs = make_inputs(*shape, requires_grad=True)
    g = torch.randn(1, 24, 300, 2, generator=torch.Generator().manual_seed(4))
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    assert_all_close(got, want, rtol=1e-5, atol=1e-4)  # offsets sum 300 classes


@ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    shape = (2, 5, 30, 17)
    inputs = make_inputs(*shape, dtype=dtype, requires_grad=True)
    g = torch.randn(2, 30, 5, 2, generator=torch.Generator().manual_seed(5)).to(dtype)
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    for w, x in zip(want, got):
        assert x.dtype == dtype
        scale = float(w.detach().abs().max()) + 1.0
        torch.testing.assert_close(x.float() / scale, w.float() / scale, **HALF_TOL[dtype])


@pytest.mark.parametrize("backend", ["reference", pytest.param("extension", marks=ext)])
@pytest.mark.parametrize("shape", [(1, 2, 5, 3), (2, 1, 3, 6)])
def test_gradcheck_float64(backend, shape):
    inputs = make_inputs(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *x: trident_decode(*x, backend=backend), inputs)


@ext
def test_opcheck():
    inputs = make_inputs(2, 3, 9, 4, requires_grad=True)
    torch.library.opcheck(torch.ops.pytal.trident_decode.default, tuple(inputs))
    idx = (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), torch.tensor([0, 8, 4]))
    plain = tuple(x.detach() for x in inputs)
    torch.library.opcheck(torch.ops.pytal.trident_decode_index.default, plain + idx)
    with torch.no_grad():
        out, stats = torch.ops.pytal.trident_decode(*plain)
    torch.library.opcheck(torch.ops.pytal.trident_decode_backward.default,
                          (torch.randn_like(out),) + plain + (stats,))


@ext
def test_inference_keeps_no_stats():
    s, e, o = make_inputs(2, 3, 9, 4)
    out, stats = torch.ops.pytal.trident_decode(s, e, o, False)
    assert stats.numel() == 0
    torch.testing.assert_close(out, trident_decode(s, e, o, backend="reference"), **FP32)
    torch.library.opcheck(torch.ops.pytal.trident_decode.default, (s, e, o, False))
    with torch.no_grad():
        got = trident_decode(*make_inputs(2, 3, 9, 4, requires_grad=True))
    torch.testing.assert_close(got, out, **FP32)


@ext
def test_torch_compile_forward_backward():
    inputs = make_inputs(1, 2, 12, 5, requires_grad=True)
    g = torch.randn(1, 12, 2, 2)
    fn = torch.compile(lambda *x: trident_decode(*x, backend="extension"), backend="aot_eager",
                       fullgraph=True)
    got = grads(fn, inputs, g)
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    assert_all_close(got, want, **FP32)


def _random_index(b, c, t, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(b, (n,), generator=gen), torch.randint(c, (n,), generator=gen),
            torch.randint(t, (n,), generator=gen))


@pytest.mark.parametrize("backend", ["reference", pytest.param("extension", marks=ext)])
@pytest.mark.parametrize("shape", [(2, 4, 30, 17), (1, 3, 4, 9), (2, 1, 12, 1)])
def test_index_form_equals_dense(backend, shape):
    s, e, o = make_inputs(*shape)
    idx = _random_index(shape[0], shape[1], shape[2], 50)
    dense = trident_decode(s, e, o, backend="reference")
    got = trident_decode(s, e, o, index=idx, backend=backend)
    torch.testing.assert_close(got, dense[idx[0], idx[2], idx[1]], **FP32)


@ext
def test_index_form_gradients_flow():
    inputs = make_inputs(1, 3, 10, 5, requires_grad=True)
    idx = _random_index(1, 3, 10, 7, seed=2)
    g = torch.randn(7, 2)
    want = grads(lambda *x: trident_decode(*x, index=idx, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, index=idx, backend="extension"), inputs, g)
    assert_all_close(got, want, **FP32)


@pytest.mark.parametrize("backend", ["reference", pytest.param("extension", marks=ext)])
@pytest.mark.parametrize("shape", [(0, 3, 5, 4), (2, 0, 5, 4), (2, 3, 0, 4)])
def test_empty_inputs(backend, shape):
    s, e, o = make_inputs(*shape, requires_grad=True)
    out = trident_decode(s, e, o, backend=backend)
    assert out.shape == (shape[0], shape[2], shape[1], 2)
    out.sum().backward()
    assert s.grad.shape == s.shape and o.grad.shape == o.shape
    none = (torch.empty(0, dtype=torch.long),) * 3
    assert trident_decode(s.detach(), e.detach(), o.detach(), index=none,
                          backend=backend).shape == (0, 2)


BAD = [  # (mutation of (s, e, o, index), exception, message fragment)
    (lambda s, e, o, i: (s[0], e, o, i), ValueError, r"start_logits must have shape \(B, Cb, T\)"),
    (lambda s, e, o, i: (s, e[:, :1], o, i), ValueError, "end_logits must have shape"),
    (lambda s, e, o, i: (s, e, o[:, :, :1], i), ValueError, r"offset_logits must have shape \(B, T, 2, K\)"),
    (lambda s, e, o, i: (s, e, o[..., :0], i), ValueError, "K = num_bins"),
    (lambda s, e, o, i: (s.long(), e.long(), o.long(), i), TypeError, "start_logits must have dtype"),
    (lambda s, e, o, i: (s, e.double(), o, i), TypeError, "end_logits must have dtype in"),
    (lambda s, e, o, i: (s, e, o.half(), i), TypeError, "offset_logits must have dtype in"),
    (lambda s, e, o, i: (s, e.to("meta"), o, i), ValueError, "end_logits must be on the device"),
    (lambda s, e, o, i: (s, e, o, i[:2]), TypeError, r"index must be None or a \(batch, cls, pos\)"),
    (lambda s, e, o, i: (s, e, o, (i[0], i[1], i[2] + 100)), ValueError, r"index\[2\] \(pos\) must hold values in \[0, 8\)"),
    (lambda s, e, o, i: (s, e, o, (i[0], i[1].int(), i[2])), TypeError, r"index\[1\] \(cls\) must have dtype"),
    (lambda s, e, o, i: (s, e, o, (i[0], i[1][:1], i[2])), ValueError, r"index\[1\] \(cls\) must have shape \(N,\) = \(3,\)"),
]


@pytest.mark.parametrize("mutate, exc, match", BAD)
def test_bad_inputs_raise(mutate, exc, match):
    s, e, o = make_inputs(2, 3, 8, 4)
    idx = (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), torch.tensor([0, 7, 4]))
    s, e, o, idx = mutate(s, e, o, idx)
    with pytest.raises(exc, match=match):
        trident_decode(s, e, o, index=idx)


@ext
@pytest.mark.parametrize("call, match", [
    (lambda s, e, o: torch.ops.pytal.trident_decode(s[0], e, o), r"start_logits must have shape \(B, Cb, T\)"),
    (lambda s, e, o: torch.ops.pytal.trident_decode(s, e, o[:, :3]), r"offset_logits must have shape \(B, T, 2, K\) = \(2, 8, 2, K\)"),
    (lambda s, e, o: torch.ops.pytal.trident_decode(s, e.double(), o), "end_logits must have the dtype of start_logits"),
    (lambda s, e, o: torch.ops.pytal.trident_decode(s.int(), e.int(), o.int()), "start_logits must have dtype float16"),
    (lambda s, e, o: torch.ops.pytal.trident_decode_index(s, e, o, torch.tensor([2]), torch.tensor([0]), torch.tensor([0])), r"batch\) must hold values in \[0, 2\)"),
    (lambda s, e, o: torch.ops.pytal.trident_decode_backward(torch.zeros(2, 8, 3, 2), s, e, o, torch.zeros(2, 8, 3, 2)), r"stats must have shape \(B, T, Cb, 2, 3\)"),
])
def test_kernel_checks(call, match):
    s, e, o = make_inputs(2, 3, 8, 4)
    # metadata faults raise RuntimeError, index values ValueError
    with pytest.raises((RuntimeError, ValueError), match=match):
        call(s, e, o)


def test_forcing_unknown_backend_raises():
    s, e, o = make_inputs(1, 1, 4, 2)
    with pytest.raises(ValueError, match="backend must be"):
        trident_decode(s, e, o, backend="fast")


# ---- CUDA (skipped without a GPU) -----------------------------------------------------------
cuda = pytest.mark.cuda


@cuda
@ext
@pytest.mark.parametrize("shape", SHAPES + [(1, 300, 64, 17)])
def test_cuda_matches_reference(shape):
    inputs = make_inputs(*shape, device="cuda", requires_grad=True)
    g = torch.randn(shape[0], shape[2], shape[1], 2, device="cuda")
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    assert_all_close(got, want, rtol=1e-5, atol=1e-4)


@cuda
@ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_cuda_dtypes(dtype):
    shape = (2, 5, 30, 17)
    inputs = make_inputs(*shape, dtype=dtype, device="cuda", scale=50.0, requires_grad=True)
    g = torch.randn(2, 30, 5, 2, device="cuda").to(dtype)
    want = grads(lambda *x: trident_decode(*x, backend="reference"), inputs, g)
    got = grads(lambda *x: trident_decode(*x, backend="extension"), inputs, g)
    tol = HALF_TOL.get(dtype, dict(rtol=1e-7, atol=1e-7))
    for w, x in zip(want, got):
        assert torch.isfinite(x).all()
        scale = float(w.detach().abs().max()) + 1.0
        torch.testing.assert_close(x.double() / scale, w.double() / scale, **tol)


@cuda
@ext
def test_cuda_index_form_and_opcheck():
    s, e, o = make_inputs(2, 4, 30, 17, device="cuda")
    idx = tuple(x.cuda() for x in _random_index(2, 4, 30, 64))
    dense = trident_decode(s, e, o, backend="reference")
    got = trident_decode(s, e, o, index=idx, backend="extension")
    torch.testing.assert_close(got, dense[idx[0], idx[2], idx[1]], **FP32)
    inputs = [x.requires_grad_() for x in make_inputs(1, 3, 9, 4, device="cuda")]
    torch.library.opcheck(torch.ops.pytal.trident_decode.default, tuple(inputs))

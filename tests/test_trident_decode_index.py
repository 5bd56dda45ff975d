"""trident_decode's index form with autograd: the extension's index kernels (forward with
stats, trident_decode_index_backward) against the reference index form and against the dense
op gathered at the triples; duplicates, empty N, class-agnostic Cb = 1, half precision,
gradcheck, opcheck, determinism, CUDA (skipped without a GPU)."""
from __future__ import annotations

import pytest
import torch

from pytal.ops import trident_decode
from test_trident_decode import FP32, HALF_TOL, assert_all_close, grads, make_inputs

ext = pytest.mark.extension
cuda = pytest.mark.cuda


def make_index(b, c, t, n, *, seed=0, duplicates=True, device="cpu"):
    """n random triples; with duplicates, the first quarter is repeated at the end (and one
    triple three times), so equal triples and shared windows both occur."""
    gen = torch.Generator().manual_seed(seed)
    idx = [torch.randint(size, (n,), generator=gen) for size in (b, c, t)]
    if duplicates and n:
        idx = [torch.cat([x, x[: max(1, n // 4)], x[:1]]) for x in idx]
    return tuple(x.to(device) for x in idx)


def dense_then_gather(s, e, o, idx):
    """The path the index form took with autograd before it had its own backward."""
    dense = trident_decode(s, e, o, backend="extension")
    return dense[idx[0], idx[2], idx[1]]


def index_form(backend, idx):
    return lambda *x: trident_decode(*x, index=idx, backend=backend)


def grad_out_for(idx, dtype=torch.float32, device="cpu", seed=1):
    g = torch.randn(idx[0].shape[0], 2, generator=torch.Generator().manual_seed(seed))
    return g.to(device=device, dtype=dtype)


SHAPES = [  # (B, Cb, T, K, N)
    (2, 4, 30, 17, 50), (1, 3, 4, 9, 20), (2, 1, 12, 1, 10), (4, 20, 64, 17, 300),
    (2, 1, 40, 17, 60), (1, 2, 1, 5, 4),
]


@ext
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference_index_form(shape):
    b, c, t, k, n = shape
    inputs = make_inputs(b, c, t, k, requires_grad=True)
    idx = make_index(b, c, t, n)
    g = grad_out_for(idx)
    want = grads(index_form("reference", idx), inputs, g)
    got = grads(index_form("extension", idx), inputs, g)
    assert_all_close(got, want, **FP32)


@ext
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_dense_then_gather(shape):
    b, c, t, k, n = shape
    inputs = make_inputs(b, c, t, k, seed=5, requires_grad=True)
    idx = make_index(b, c, t, n, seed=3)
    g = grad_out_for(idx, seed=4)
    want = grads(lambda *x: dense_then_gather(*x, idx), inputs, g)
    got = grads(index_form("extension", idx), inputs, g)
    assert_all_close(got, want, **FP32)


@ext
def test_all_triples_equal():
    """One triple N times: its gradients are N times the single one's."""
    inputs = make_inputs(2, 3, 10, 5, requires_grad=True)
    one = tuple(torch.tensor([v]) for v in (1, 2, 7))
    many = tuple(x.repeat(9) for x in one)
    single = grads(index_form("extension", one), inputs, torch.ones(1, 2))
    repeated = grads(index_form("extension", many), inputs, torch.ones(9, 2))
    torch.testing.assert_close(repeated[0], single[0].repeat(9, 1), **FP32)
    for w, x in zip(single[1:], repeated[1:]):
        torch.testing.assert_close(x, 9 * w, **FP32)


@ext
def test_class_agnostic_all_classes_zero():
    b, t, k = 3, 50, 17
    inputs = make_inputs(b, 1, t, k, requires_grad=True)
    gen = torch.Generator().manual_seed(6)
    idx = (torch.randint(b, (80,), generator=gen), torch.zeros(80, dtype=torch.long),
           torch.randint(t, (80,), generator=gen))
    g = grad_out_for(idx)
    want = grads(index_form("reference", idx), inputs, g)
    got = grads(index_form("extension", idx), inputs, g)
    assert_all_close(got, want, **FP32)


@ext
@pytest.mark.parametrize("shape", [(2, 3, 10, 5), (0, 3, 10, 5), (2, 3, 0, 5)])
def test_empty_index_gives_zero_gradients(shape):
    inputs = make_inputs(*shape, requires_grad=True)
    none = (torch.empty(0, dtype=torch.long),) * 3
    out = trident_decode(*inputs, index=none, backend="extension")
    assert out.shape == (0, 2)
    gs = torch.autograd.grad(out, inputs, torch.empty(0, 2))
    for x, gx in zip(inputs, gs):
        assert gx.shape == x.shape and not gx.any()


@ext
def test_only_one_side_reaches_the_loss():
    inputs = make_inputs(2, 4, 30, 17, requires_grad=True)
    idx = make_index(2, 4, 30, 40)

    def loss(backend):
        return trident_decode(*inputs, index=idx, backend=backend)[:, 1].sum()

    want = torch.autograd.grad(loss("reference"), inputs)
    got = torch.autograd.grad(loss("extension"), inputs)
    assert_all_close(got, want, **FP32)


@ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    b, c, t, k = 2, 5, 30, 17
    inputs = make_inputs(b, c, t, k, dtype=dtype, requires_grad=True)
    idx = make_index(b, c, t, 60)
    g = grad_out_for(idx, dtype)
    want = grads(index_form("reference", idx), inputs, g)
    got = grads(index_form("extension", idx), inputs, g)
    for w, x in zip(want, got):
        assert x.dtype == dtype
        scale = float(w.detach().abs().max()) + 1.0
        torch.testing.assert_close(x.float() / scale, w.float() / scale, **HALF_TOL[dtype])


@pytest.mark.parametrize("backend", ["reference", pytest.param("extension", marks=ext)])
@pytest.mark.parametrize("shape", [(1, 2, 5, 3, 6), (2, 1, 4, 6, 5), (2, 3, 7, 4, 12)])
def test_gradcheck_float64(backend, shape):
    b, c, t, k, n = shape
    inputs = make_inputs(b, c, t, k, dtype=torch.float64, requires_grad=True)
    idx = make_index(b, c, t, n)
    assert torch.autograd.gradcheck(index_form(backend, idx), inputs)


@ext
@pytest.mark.parametrize("save_stats", [False, True])
def test_opcheck_index(save_stats):
    # Without stats there is no backward: the inputs need no gradient then.
    inputs = tuple(make_inputs(2, 3, 9, 4, requires_grad=save_stats))
    idx = make_index(2, 3, 9, 8)
    torch.library.opcheck(torch.ops.pytal.trident_decode_index.default,
                          inputs + idx + (save_stats,))


@ext
def test_opcheck_index_backward():
    plain = tuple(make_inputs(2, 3, 9, 4))
    idx = make_index(2, 3, 9, 8)
    out, stats = torch.ops.pytal.trident_decode_index(*plain, *idx, True)
    torch.library.opcheck(torch.ops.pytal.trident_decode_index_backward.default,
                          (torch.randn_like(out),) + plain + idx + (stats,))


@ext
def test_stats_match_the_dense_op():
    plain = tuple(make_inputs(2, 3, 9, 4))
    idx = make_index(2, 3, 9, 8)
    out, stats = torch.ops.pytal.trident_decode_index(*plain, *idx, True)
    dense_out, dense_stats = torch.ops.pytal.trident_decode(*plain)
    torch.testing.assert_close(out, dense_out[idx[0], idx[2], idx[1]], **FP32)
    torch.testing.assert_close(stats, dense_stats[idx[0], idx[2], idx[1]], **FP32)
    _, none = torch.ops.pytal.trident_decode_index(*plain, *idx)
    assert none.numel() == 0


@ext
@pytest.mark.parametrize("threads", [1, 2])
def test_backward_is_deterministic(threads):
    b, c, t, k = 4, 20, 128, 17
    inputs = make_inputs(b, c, t, k, requires_grad=True)
    idx = make_index(b, c, t, 1000, seed=8)
    g = grad_out_for(idx)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        first = grads(index_form("extension", idx), inputs, g)
        second = grads(index_form("extension", idx), inputs, g)
    finally:
        torch.set_num_threads(previous)
    for x, y in zip(first, second):
        assert torch.equal(x, y)


@ext
def test_torch_compile_index_form():
    inputs = make_inputs(1, 2, 12, 5, requires_grad=True)
    idx = make_index(1, 2, 12, 6)
    g = grad_out_for(idx)
    # The op itself.
    fn = torch.compile(lambda *x: torch.ops.pytal.trident_decode_index(*x, *idx, True)[0],
                       backend="aot_eager", fullgraph=True)
    want = grads(index_form("reference", idx), inputs, g)
    got = grads(fn, inputs, g)
    assert_all_close(got, want, **FP32)
    # The public wrapper too: under compile its range check is left to the kernel.
    public = torch.compile(index_form("extension", idx), backend="aot_eager", fullgraph=True)
    assert_all_close(grads(public, inputs, g), want, **FP32)
    bad = (idx[0], idx[1], idx[2] + 100)
    torch._dynamo.reset()
    public_bad = torch.compile(index_form("extension", bad), backend="aot_eager", fullgraph=True)
    with pytest.raises(ValueError, match="pos\\) must hold values in \\[0, 12\\)"):
        public_bad(*inputs)


@ext
@pytest.mark.parametrize("call, match", [
    (lambda s, e, o, i, st: torch.ops.pytal.trident_decode_index_backward(
        torch.zeros(2, 2), s, e, o, *i, st), r"grad_out must have shape \(N, 2\) = \(3, 2\)"),
    (lambda s, e, o, i, st: torch.ops.pytal.trident_decode_index_backward(
        torch.zeros(3, 2), s, e, o, *i, st[:, 0]), r"stats must have shape \(N, 2, 3\)"),
    (lambda s, e, o, i, st: torch.ops.pytal.trident_decode_index_backward(
        torch.zeros(3, 2), s, e, o, *i, st.double()), "stats must have dtype"),
    (lambda s, e, o, i, st: torch.ops.pytal.trident_decode_index_backward(
        torch.zeros(3, 2), s, e, o, i[0], i[1] + 5, i[2], st), r"cls\) must hold values in \[0, 3\)"),
])
def test_backward_kernel_checks(call, match):
    s, e, o = make_inputs(2, 3, 8, 4)
    idx = (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), torch.tensor([0, 7, 4]))
    _, stats = torch.ops.pytal.trident_decode_index(s, e, o, *idx, True)
    # metadata faults raise RuntimeError, index values ValueError
    with pytest.raises((RuntimeError, ValueError), match=match):
        call(s, e, o, idx, stats)


# ---- CUDA (skipped without a GPU) -----------------------------------------------------------
@cuda
@ext
@pytest.mark.parametrize("shape", SHAPES + [(4, 20, 1024, 17, 2000)])
def test_cuda_matches_reference_and_dense(shape):
    b, c, t, k, n = shape
    inputs = make_inputs(b, c, t, k, device="cuda", requires_grad=True)
    idx = make_index(b, c, t, n, device="cuda")
    g = grad_out_for(idx, device="cuda")
    got = grads(index_form("extension", idx), inputs, g)
    for want in (grads(index_form("reference", idx), inputs, g),
                 grads(lambda *x: dense_then_gather(*x, idx), inputs, g)):
        assert_all_close(got, want, rtol=1e-5, atol=1e-4)


@cuda
@ext
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_cuda_dtypes(dtype):
    b, c, t, k = 2, 5, 30, 17
    inputs = make_inputs(b, c, t, k, dtype=dtype, device="cuda", requires_grad=True)
    idx = make_index(b, c, t, 60, device="cuda")
    g = grad_out_for(idx, dtype, device="cuda")
    want = grads(index_form("reference", idx), inputs, g)
    got = grads(index_form("extension", idx), inputs, g)
    tol = HALF_TOL.get(dtype, dict(rtol=1e-7, atol=1e-7))
    for w, x in zip(want, got):
        scale = float(w.detach().abs().max()) + 1.0
        torch.testing.assert_close(x.double() / scale, w.double() / scale, **tol)


@cuda
@ext
def test_cuda_deterministic_empty_and_opcheck():
    b, c, t, k = 4, 20, 256, 17
    inputs = make_inputs(b, c, t, k, device="cuda", requires_grad=True)
    idx = make_index(b, c, t, 2000, device="cuda")
    g = grad_out_for(idx, device="cuda")
    first = grads(index_form("extension", idx), inputs, g)
    second = grads(index_form("extension", idx), inputs, g)
    for x, y in zip(first, second):
        assert torch.equal(x, y)
    none = tuple(torch.empty(0, dtype=torch.long, device="cuda") for _ in range(3))
    out = trident_decode(*inputs, index=none, backend="extension")
    assert not any(gx.any() for gx in torch.autograd.grad(out, inputs, out.new_empty(0, 2)))
    small = tuple(make_inputs(2, 3, 9, 4, device="cuda", requires_grad=True))
    small_idx = make_index(2, 3, 9, 8, device="cuda")
    torch.library.opcheck(torch.ops.pytal.trident_decode_index.default,
                          small + small_idx + (True,))
    plain = tuple(x.detach() for x in small)
    out, stats = torch.ops.pytal.trident_decode_index(*plain, *small_idx, True)
    torch.library.opcheck(torch.ops.pytal.trident_decode_index_backward.default,
                          (torch.randn_like(out),) + plain + small_idx + (stats,))

"""boundary_pool and segment_pool: the reference against a direct transcription of AFSD's
boundary max pooling, the extension against the reference (values and gradients), gradcheck,
opcheck, bad input and empty input."""
from __future__ import annotations

import pytest
import torch

import pytal
from benchmarks.boundary_pool import scan_baseline
from pytal.ops.reference import boundary_pool as reference

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
ext = pytest.mark.extension


def brute_force(features, segments, groups, mode="max"):
    """One Python loop per output: truncate, clamp, reduce (first argmax for max)."""
    batch, channels, length = features.shape
    out = features.new_empty(batch, channels, segments.shape[1])
    for b in range(batch):
        for k in range(segments.shape[1]):
            for c in range(channels):
                g = c // (channels // groups)
                lo, hi = (min(max(int(float(v)), 0), length - 1)
                          for v in segments[b, k, 2 * g:2 * g + 2])
                window = features[b, c, lo:hi + 1]
                out[b, c, k] = window.max() if mode == "max" else window.double().mean()
    return out


def make_segments(batch, num, length, width, *, max_len=None, generator=None, device="cpu"):
    """(batch, num, width) random [lo, hi] pairs with fractional parts, some outside
    [0, length - 1]; lengths up to max_len (default: the whole row)."""
    max_len = length if max_len is None else max_len
    shape = (batch, num, width // 2)
    lo = torch.randint(-2, length + 1, shape, generator=generator).double()
    span = torch.randint(0, max_len, shape, generator=generator).double()
    frac = torch.rand(shape + (2,), generator=generator, dtype=torch.float64) * 0.99
    pairs = torch.stack([lo + frac[..., 0], lo + span + frac[..., 1]], dim=-1)
    return pairs.flatten(-2).float().to(device)


def tied_features(batch, channels, length, generator, dtype=torch.float32, device="cpu"):
    """Few distinct values, so that most windows hold their maximum more than once."""
    x = torch.randint(0, 4, (batch, channels, length), generator=generator)
    return x.to(dtype=dtype, device=device)


def pool(op, features, segments, mode, backend):
    if op == "boundary_pool":
        return pytal.ops.boundary_pool(features, segments, backend=backend)
    return pytal.ops.segment_pool(features, segments, mode=mode, backend=backend)


CASES = [("boundary_pool", "max", 4), ("segment_pool", "max", 2), ("segment_pool", "mean", 2)]


# --- the reference is the specification ----------------------------------------------------

@pytest.mark.parametrize("op,mode,width", CASES)
def test_reference_matches_brute_force(op, mode, width):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 9, generator=g, dtype=torch.float64)
    seg = make_segments(2, 6, 9, width, generator=g)
    got = pool(op, x, seg, mode, "reference")
    torch.testing.assert_close(got, brute_force(x, seg, width // 2, mode))


def test_reference_gradient_goes_to_first_argmax():
    x = torch.tensor([[[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 0.0, 5.0]]], requires_grad=True)
    seg = torch.tensor([[[0.0, 3.0, 1.0, 3.0]]])
    out = pytal.ops.boundary_pool(x, seg, backend="reference")
    out.sum().backward()
    assert out.tolist() == [[[3.0], [5.0]]]
    assert x.grad.tolist() == [[[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]]


# --- extension against the reference ---------------------------------------------------------

@ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,mode,width", CASES)
@pytest.mark.parametrize("length,num,max_len", [(1, 3, None), (7, 5, 2), (64, 64, 4),
                                                (256, 256, None), (300, 40, None)])
def test_forward_backward_match_reference(device, op, mode, width, length, num, max_len):
    g = torch.Generator().manual_seed(length * 31 + num)
    channels = 6
    x = tied_features(2, channels, length, g, device=device)
    x = (x + 0.25 * torch.randn(x.shape, generator=g).round().to(device)).requires_grad_()
    seg = make_segments(2, num, length, width, max_len=max_len, generator=g, device=device)
    grad = torch.randn(2, channels, num, generator=g).to(device)
    xr = x.detach().clone().requires_grad_()
    got = pool(op, x, seg, mode, "extension")
    want = pool(op, xr, seg, mode, "reference")
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    (got * grad).sum().backward()
    (want * grad).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-6, atol=1e-6)


@ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("op,mode,width", CASES)
def test_half_precision(device, dtype, op, mode, width):
    """Max selects a stored value: exact. Mean: float64 sum, one rounding (1 ulp); the
    reference sums in float32, so 2 ulps of the dtype."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 96, generator=g).to(device=device, dtype=dtype)
    seg = make_segments(2, 50, 96, width, generator=g, device=device)
    got = pool(op, x, seg, mode, "extension")
    want = pool(op, x, seg, mode, "reference")
    assert got.dtype == dtype
    tol = 0.0 if mode == "max" else (2e-3 if dtype == torch.float16 else 1.6e-2)
    torch.testing.assert_close(got.float(), want.float(), rtol=tol, atol=tol)
    # gradients: max routes the (exact) gradient; mean divides once
    xe, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    gout = torch.randn(got.shape, generator=g).to(device=device, dtype=dtype)
    (pool(op, xe, seg, mode, "extension") * gout).sum().backward()
    (pool(op, xr, seg, mode, "reference") * gout).sum().backward()
    gtol = 1e-2 if dtype == torch.float16 else 6e-2
    torch.testing.assert_close(xe.grad.float(), xr.grad.float(), rtol=gtol, atol=gtol)


@ext
@pytest.mark.parametrize("device", DEVICES)
def test_activitynet_lengths_and_baseline(device):
    """T = 768 with intervals up to the whole row (the sparse-table path) and the benchmark
    baseline (one scan per output) agree exactly."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 16, 768, generator=g).to(device)
    seg = make_segments(1, 768, 768, 4, generator=g, device=device)
    got = pytal.ops.boundary_pool(x, seg, backend="extension")
    assert torch.equal(got, pytal.ops.boundary_pool(x, seg, backend="reference"))
    assert torch.equal(got, scan_baseline(x, seg))


@ext
@pytest.mark.cuda
@pytest.mark.parametrize("op,mode,width", CASES)
@pytest.mark.parametrize("length,num", [(40000, 16), (64, 50000)])
def test_cuda_rows_beyond_shared_memory(op, mode, width, length, num):
    """Rows longer than 32767 positions, or too many intervals for the backward's shared
    memory, take the warp-per-output kernels."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, length, generator=g).cuda().requires_grad_()
    seg = make_segments(1, num, length, width, generator=g, device="cuda")
    xr = x.detach().clone().requires_grad_()
    got = pool(op, x, seg, mode, "extension")
    want = pool(op, xr, seg, mode, "reference")
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    grad = torch.randn(got.shape, generator=g).cuda()
    (got * grad).sum().backward()
    (want * grad).sum().backward()
    # mean: thousands of float32 contributions per position in the reference
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-4)


@ext
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_max_matches_cpu_bitwise(dtype):
    """Both kernels pick the same first argmax and sum each position's gradients in
    ascending k in the same type."""
    g = torch.Generator().manual_seed(7)
    x = tied_features(2, 8, 300, g, dtype=dtype)
    seg = make_segments(2, 400, 300, 4, generator=g)
    grad = torch.randn(2, 8, 400, generator=g).to(dtype)
    results = []
    for device in ("cpu", "cuda"):
        xd = x.to(device).requires_grad_()
        out = pytal.ops.boundary_pool(xd, seg.to(device), backend="extension")
        out.backward(grad.to(device))
        results.append((out.cpu(), xd.grad.cpu()))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


@ext
@pytest.mark.parametrize("device", DEVICES)
def test_nan_features_are_maximal(device):
    x = torch.tensor([[[1.0, float("nan"), 3.0, float("nan")]] * 2], device=device)
    seg = torch.tensor([[[0, 3, 2, 2], [0, 0, 2, 3]]], dtype=torch.float32, device=device)
    xe = x.clone().requires_grad_()
    got = pytal.ops.boundary_pool(xe, seg, backend="extension")
    want = pytal.ops.boundary_pool(x, seg, backend="reference")
    torch.testing.assert_close(got, want, equal_nan=True)
    got.sum().backward()
    assert xe.grad[0, 0].tolist() == [1.0, 1.0, 0.0, 0.0]  # first NaN, then position 0
    assert xe.grad[0, 1].tolist() == [0.0, 0.0, 1.0, 1.0]


@ext
@pytest.mark.parametrize("device", DEVICES)
def test_clamping_and_truncation(device):
    """Truncation toward zero (-0.9 -> 0), clamping of out-of-range and infinite coordinates,
    integer segments."""
    x = torch.arange(10.0, device=device).repeat(1, 2, 1)
    seg = torch.tensor([[[-0.9, 2.9, 7.5, 50.0], [-5.0, -1.0, 9.0, float("inf")],
                         [float("-inf"), 0.0, 3.0, 3.99]]], device=device)
    want = torch.tensor([[[2.0, 0.0, 0.0], [9.0, 9.0, 3.0]]], device=device)
    for backend in ("reference", "extension"):
        assert torch.equal(pytal.ops.boundary_pool(x, seg, backend=backend), want)
        assert torch.equal(pytal.ops.boundary_pool(x, seg.clamp(-99, 99).long(),
                                                   backend=backend), want)
        assert torch.equal(pytal.ops.boundary_pool(x, seg.half(), backend=backend), want)


@ext
@pytest.mark.parametrize("device", DEVICES)
def test_deterministic(device):
    g = torch.Generator().manual_seed(3)
    x = tied_features(2, 8, 200, g, device=device).requires_grad_()
    seg = make_segments(2, 300, 200, 4, generator=g, device=device)
    grads = []
    for _ in range(2):
        x.grad = None
        pytal.ops.boundary_pool(x, seg, backend="extension").sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


# --- gradcheck and opcheck ---------------------------------------------------------------------

@ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,mode,width", CASES)
def test_gradcheck(device, op, mode, width):
    g = torch.Generator().manual_seed(4)
    # distinct values, well apart, so that finite differences do not move the argmax
    x = (torch.randperm(4 * 20, generator=g).double().reshape(1, 4, 20) * 0.1).to(device)
    seg = make_segments(1, 7, 20, width, generator=g, device=device)
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda f: pool(op, f, seg, mode, "extension"), (x,),
                                    eps=1e-3, atol=1e-6)


@ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,mode,width", CASES)
def test_opcheck(device, op, mode, width):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 16, generator=g).to(device).requires_grad_()
    seg = make_segments(2, 5, 16, width, generator=g, device=device)
    if op == "boundary_pool":
        torch.library.opcheck(torch.ops.pytal.boundary_pool.default, (x, seg))
        torch.library.opcheck(torch.ops.pytal.boundary_pool_backward.default,
                              (torch.randn(2, 4, 5, device=device), x.detach(), seg))
    else:
        torch.library.opcheck(torch.ops.pytal.segment_pool.default, (x, seg, mode))
        torch.library.opcheck(torch.ops.pytal.segment_pool_backward.default,
                              (torch.randn(2, 4, 5, device=device), x.detach(), seg, mode))


# --- bad and empty input --------------------------------------------------------------------------

BACKENDS = ["reference", pytest.param("extension", marks=ext)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("features,segments,error,match", [
    (torch.zeros(1, 3, 5), torch.zeros(1, 2, 4), ValueError, "even number of channels"),
    (torch.zeros(1, 2, 5), torch.tensor([[[0.0, float("nan"), 0.0, 1.0]]]), ValueError,
     "must not contain NaN"),
    (torch.zeros(1, 2, 5), torch.tensor([[[0.0, 1.0, 3.0, 2.0]]]), ValueError, "lo <= hi"),
    (torch.zeros(1, 2, 5), torch.zeros(1, 2, 2), ValueError, r"shape \(B, K, 4\)"),
    (torch.zeros(1, 2, 5), torch.zeros(2, 2, 4), ValueError, "B = 1"),
    (torch.zeros(2, 5), torch.zeros(1, 2, 4), ValueError, r"shape \(B, C, T\)"),
    (torch.zeros(1, 2, 5, dtype=torch.int64), torch.zeros(1, 2, 4), TypeError, "features"),
    (torch.zeros(1, 2, 0), torch.zeros(1, 2, 4), ValueError, "T >= 1"),
])
def test_boundary_pool_bad_input(backend, features, segments, error, match):
    with pytest.raises(error, match=match):
        pytal.ops.boundary_pool(features, segments, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_segment_pool_bad_input(backend):
    x = torch.zeros(1, 3, 5)
    with pytest.raises(ValueError, match="mode must be one of"):
        pytal.ops.segment_pool(x, torch.zeros(1, 2, 2), mode="sum", backend=backend)
    with pytest.raises(ValueError, match="lo <= hi"):
        pytal.ops.segment_pool(x, torch.tensor([[[2.7, 1.9]]]), backend=backend)
    # lo = 2.7 and hi = 2.1 truncate to the same position: valid
    assert pytal.ops.segment_pool(x, torch.tensor([[[2.7, 2.1]]]), backend=backend).shape == \
        (1, 3, 1)


@ext
def test_cpp_checks_name_the_argument():
    """The C++ checks guard direct calls of the registered op."""
    with pytest.raises(RuntimeError, match="even number of channels"):
        torch.ops.pytal.boundary_pool(torch.zeros(1, 3, 5), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="lo <= hi"):
        torch.ops.pytal.boundary_pool(torch.zeros(1, 2, 5), torch.tensor([[[3.0, 1, 0, 1]]]))
    with pytest.raises(RuntimeError, match='mode must be "max" or "mean"'):
        torch.ops.pytal.segment_pool(torch.zeros(1, 2, 5), torch.zeros(1, 1, 2), "sum")
    with pytest.raises(RuntimeError, match="grad_output must have shape"):
        torch.ops.pytal.boundary_pool_backward(torch.zeros(1, 2, 2), torch.zeros(1, 2, 5),
                                               torch.zeros(1, 1, 4))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,num", [((1, 4, 5), 0), ((0, 4, 5), 3), ((2, 0, 5), 3),
                                       ((1, 4, 0), 0)])
def test_empty_inputs(backend, shape, num):
    x = torch.zeros(shape, requires_grad=True)
    out = pytal.ops.boundary_pool(x, torch.zeros(shape[0], num, 4), backend=backend)
    assert out.shape == (shape[0], shape[1], num)
    out.sum().backward()
    assert x.grad.shape == x.shape and not x.grad.any()

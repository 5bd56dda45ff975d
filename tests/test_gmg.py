"""pytal.ops.gmg: the extension against the reference (outputs and every gradient), gradcheck,
opcheck, bad inputs and empty inputs."""
from __future__ import annotations

import pytest
import torch

import pytal
from pytal.ops import gmg
from pytal.ops.reference import gmg as reference

GATINGS = ("paper", "release")
NAMES = ("u", "filter_w1", "filter_b1", "filter_w2", "filter_b2", "conv_weight", "conv_bias",
         "instant_weight", "instant_bias")


def make_inputs(B, C, T, k, *, dtype=torch.float32, param_dtype=None, device="cpu", seed=0,
                requires_grad=False):
    """u ~ N(0, 1) and parameters scaled so that every branch (ReLU on and off, softshrink
    inside and outside its dead zone) is exercised."""
    gen = torch.Generator().manual_seed(seed)
    param_dtype = param_dtype or (torch.float64 if dtype == torch.float64 else torch.float32)

    def rand(*shape, scale=1.0, dt=param_dtype):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dt)

    tensors = [rand(B, C, T, dt=dtype), rand(2, C, scale=0.8), rand(2, C, scale=0.3),
               rand(2, C, scale=0.8), rand(2, C, scale=0.05), rand(C, k, scale=0.5),
               rand(C, scale=0.2), rand(C, scale=0.8), rand(C, scale=0.2)]
    return [t.to(device).requires_grad_(requires_grad) for t in tensors]


def run(inputs, backend, gating, lambd=1e-3):
    return gmg(*inputs, lambd=lambd, gating=gating, backend=backend)


def grads(inputs, backend, gating, grad_out):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = run(inputs, backend, gating)
    out.backward(grad_out)
    return out.detach(), [t.grad for t in inputs]


def assert_close_all(actual, expected, atol, rtol):
    for name, a, e in zip(("out",) + NAMES, actual, expected):
        torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def compare_with_reference(B, C, T, k, gating, device="cpu", atol=1e-4, rtol=1e-4):
    inputs = make_inputs(B, C, T, k, device=device, seed=T * 31 + k)
    grad_out = torch.randn(B, C, T, generator=torch.Generator().manual_seed(1)).to(device)
    out_e, g_e = grads(inputs, "extension", gating, grad_out)
    out_r, g_r = grads(inputs, "reference", gating, grad_out)
    assert_close_all([out_e, *g_e], [out_r, *g_r], atol, rtol)


# --- extension vs reference, float32 ---------------------------------------------------------

@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("T", [1, 2, 7, 64, 255])
@pytest.mark.parametrize("k", [1, 3, 31])
def test_matches_reference_cpu(T, k, gating):
    compare_with_reference(2, 3, T, k, gating)


@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("k", [1, 3, 31])
def test_matches_reference_cpu_long(k, gating):
    # THUMOS length; parameter gradients sum over 2304 steps, hence the looser atol.
    compare_with_reference(1, 4, 2304, k, gating, atol=5e-4, rtol=1e-4)


@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference_cpu_vector_remainders(dtype, gating):
    # The CPU row loops are vectorised (SSE2, or AVX2 clones picked at load time): lengths
    # 3..40 cover every remainder of 4- and 8-lane float and 2- and 4-lane double vectors, in
    # both the time loops (T) and the frequency loops (T // 2 + 1).
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for T in range(3, 41):
        inputs = make_inputs(2, 3, T, 5, dtype=dtype, seed=T)
        grad_out = torch.randn(2, 3, T, generator=torch.Generator().manual_seed(T), dtype=dtype)
        out_e, g_e = grads(inputs, "extension", gating, grad_out)
        out_r, g_r = grads(inputs, "reference", gating, grad_out)
        assert_close_all([out_e, *g_e], [out_r, *g_r], tol, tol)


@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
def test_nan_and_inf_propagate_as_in_reference_cpu(gating):
    # The CPU kernel is compiled without trapping math (so that relu / softshrink and their
    # slopes vectorise): non-finite values must still reach the same outputs and gradients.
    inputs = make_inputs(2, 3, 16, 3, seed=5)
    inputs[0][0, 1, 4] = float("nan")
    inputs[0][1, 2, 9] = float("inf")
    grad_out = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(2))
    out_e, g_e = grads(inputs, "extension", gating, grad_out)
    out_r, g_r = grads(inputs, "reference", gating, grad_out)
    for name, a, e in zip(("out",) + NAMES, [out_e, *g_e], [out_r, *g_r]):
        assert torch.equal(a.isnan(), e.isnan()), name
        finite = a.isfinite() & e.isfinite()
        torch.testing.assert_close(a[finite], e[finite], atol=1e-4, rtol=1e-4,
                                   msg=lambda m: f"{name}: {m}")


@pytest.mark.extension
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("gating", GATINGS)
def test_half_precision_cpu(dtype, tol, gating):
    """Both backends compute in float32 and round once: they agree to the output's rounding.
    Gradients: grad_u in u's dtype (rounding tol), parameters' in float32 (1e-3 relative)."""
    inputs = make_inputs(2, 3, 64, 3, dtype=dtype)
    grad_out = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(1)).to(dtype)
    out_e, g_e = grads(inputs, "extension", gating, grad_out)
    out_r, g_r = grads(inputs, "reference", gating, grad_out)
    assert out_e.dtype == dtype and g_e[0].dtype == dtype and g_e[1].dtype == torch.float32
    torch.testing.assert_close(out_e, out_r, atol=tol, rtol=tol)
    torch.testing.assert_close(g_e[0], g_r[0], atol=tol, rtol=tol)
    for a, e in zip(g_e[1:], g_r[1:]):
        torch.testing.assert_close(a, e, atol=1e-3, rtol=1e-3)


def test_reference_matches_release_arithmetic():
    """The "release" mode against the public block's mixer written out (w1 as (2, C, 1))."""
    u, w1, b1, w2, b2, cw, cb, a, ab = make_inputs(2, 4, 33, 3)
    X = torch.fft.rfft(u, dim=-1, norm="ortho")
    r1 = torch.relu(X.real * w1[0, :, None] - X.imag * w1[1, :, None] + b1[0, :, None])
    i1 = torch.relu(X.imag * w1[0, :, None] + X.real * w1[1, :, None] + b1[1, :, None])
    r2 = r1 * w2[0, :, None] - i1 * w2[1, :, None] + b2[0, :, None]
    i2 = i1 * w2[0, :, None] + r1 * w2[1, :, None] + b2[1, :, None]
    W = torch.view_as_complex(torch.nn.functional.softshrink(torch.stack([r2, i2], -1), 1e-3))
    g = torch.fft.irfft(W * X, dim=-1, norm="ortho", n=33)
    local = torch.nn.functional.conv1d(u, cw[:, None], cb, padding=1, groups=4) * g
    expected = (a[:, None] * u + ab[:, None]) * local + local + g + u
    torch.testing.assert_close(reference.gmg(u, w1, b1, w2, b2, cw, cb, a, ab, gating="release"),
                               expected, atol=1e-5, rtol=1e-5)


# --- gradcheck and opcheck --------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", pytest.param("extension",
                                                               marks=pytest.mark.extension)])
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("T", [1, 6, 9])
def test_gradcheck(backend, gating, T):
    inputs = make_inputs(2, 2, T, 3, dtype=torch.float64, seed=T, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *x: gmg(*x, lambd=1e-3, gating=gating, backend=backend), inputs,
        eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
def test_opcheck(gating):
    inputs = make_inputs(2, 3, 10, 3, requires_grad=True)
    torch.library.opcheck(torch.ops.pytal.gmg.default, (*inputs, 1e-3, gating))


@pytest.mark.extension
def test_opcheck_backward():
    inputs = make_inputs(2, 3, 10, 3)
    out, g = torch.ops.pytal.gmg(*inputs, 1e-3, "paper")
    torch.library.opcheck(torch.ops.pytal.gmg_backward.default,
                          (torch.randn_like(out), inputs[0], g, *inputs[1:], 1e-3, "paper"))


# --- bad and empty inputs ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["reference", pytest.param("extension",
                                                               marks=pytest.mark.extension)])
@pytest.mark.parametrize("index,shape,match", [
    (0, (3, 10), r"u must have shape \(B, C, T\)"),
    (1, (2, 4), r"filter_w1 must have shape \(2, C\)"),
    (4, (3, 3), r"filter_b2 must have shape \(2, C\)"),
    (5, (3, 4), r"conv_weight must have an odd kernel size"),
    (5, (3, 33), r"conv_weight must have an odd kernel size k <= 31"),
    (5, (4, 3), r"conv_weight must have shape \(C, k\)"),
    (8, (4,), r"instant_bias must have shape \(C,\)"),
])
def test_bad_shapes(backend, index, shape, match):
    inputs = make_inputs(2, 3, 10, 3)
    inputs[index] = torch.zeros(shape)
    with pytest.raises(ValueError, match=match):
        run(inputs, backend, "paper")


def test_bad_dtype_and_options():
    inputs = make_inputs(2, 3, 10, 3)
    with pytest.raises(TypeError, match=r"u must have dtype in"):
        run([inputs[0].to(torch.int64), *inputs[1:]], None, "paper")
    with pytest.raises(TypeError, match=r"conv_bias must have dtype in"):
        run([*inputs[:6], inputs[6].to(torch.int32), *inputs[7:]], None, "paper")
    with pytest.raises(ValueError, match=r"gating must be one of"):
        run(inputs, None, "other")
    with pytest.raises(ValueError, match=r"lambd must be a finite number >= 0"):
        run(inputs, None, "paper", lambd=-1.0)


@pytest.mark.extension
def test_cpp_checks_name_the_argument():
    inputs = make_inputs(2, 3, 10, 3)
    with pytest.raises(RuntimeError, match=r"conv_bias must have shape \(C,\)"):
        torch.ops.pytal.gmg(*inputs[:6], torch.zeros(5), *inputs[7:], 1e-3, "paper")
    with pytest.raises(RuntimeError, match=r"gating must be \"paper\" or \"release\""):
        torch.ops.pytal.gmg(*inputs, 1e-3, "x")


@pytest.mark.parametrize("backend", ["reference", pytest.param("extension",
                                                               marks=pytest.mark.extension)])
@pytest.mark.parametrize("B,C,T", [(0, 3, 10), (2, 3, 0)])
def test_empty(backend, B, C, T):
    inputs = make_inputs(B, C, T, 3, requires_grad=True)
    out = run(inputs, backend, "paper")
    assert out.shape == (B, C, T)
    out.sum().backward()
    grad = inputs[1].grad
    assert grad is None or (grad.shape == (2, C) and not grad.any())


def test_default_backend(monkeypatch):
    """The default runs the kernel when it is built (the reference is not called), else the
    reference; either way the values are the reference's."""
    built = bool(pytal.ops.backend_info()["ops"].get("gmg"))
    inputs = make_inputs(1, 2, 8, 3)
    want = run(inputs, "reference", "paper")
    calls = []
    original = reference.gmg
    monkeypatch.setattr(reference, "gmg", lambda *a, **k: calls.append(1) or original(*a, **k))
    torch.testing.assert_close(run(inputs, None, "paper"), want, atol=1e-5, rtol=1e-5)
    assert len(calls) == (0 if built else 1)


# --- CUDA ---------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("T", [1, 2, 7, 64, 255, 2304])
@pytest.mark.parametrize("k", [1, 3, 31])
def test_matches_reference_cuda(T, k, gating):
    compare_with_reference(2, 5, T, k, gating, device="cuda", atol=5e-4, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.extension
@pytest.mark.parametrize("dtype,tol", [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_half_precision_cuda(dtype, tol):
    inputs = make_inputs(2, 3, 100, 3, dtype=dtype, device="cuda")
    torch.testing.assert_close(run(inputs, "extension", "paper"),
                               run(inputs, "reference", "paper"), atol=tol, rtol=tol)


@pytest.mark.cuda
@pytest.mark.extension
@pytest.mark.parametrize("gating", GATINGS)
def test_gradcheck_cuda(gating):
    inputs = make_inputs(2, 2, 9, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *x: gmg(*x, gating=gating, backend="extension"), inputs, eps=1e-6, atol=1e-5,
        rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.extension
def test_opcheck_cuda():
    inputs = make_inputs(2, 3, 10, 3, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.pytal.gmg.default, (*inputs, 1e-3, "release"))

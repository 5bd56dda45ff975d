"""pytal.ops.gmg against an independent transcription of the CLTDR-GMG paper (Li et al., AAAI
2025), eqs. 1-4, for ``gating="paper"`` (and the public code's ``"release"`` combination).

The oracle below shares nothing with pytal: the DFT is a float64 matrix product (no
torch.fft), the depthwise convolution is a sum over kernel taps (no conv1d), and eq. 4 is
written term by term::

    f_local   = ReLU(f_global) * Conv(x) + f_global
    f_instant = ReLU(f_local) * FC(x)
    f_GMG     = x + f_instant + f_local

Being plain autograd code, it also gives the oracle's gradients for both backends' backward.
"""
from __future__ import annotations

import math

import pytest
import torch

from pytal.ops import gmg

BACKENDS = ["reference", pytest.param("extension", marks=pytest.mark.extension)]


def dft_half(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1 with orthonormal scaling on the non-negative frequencies u = 0 .. T // 2 of a
    real (B, C, T) signal: X[u] = T^-1/2 sum_t x_t exp(-2 pi j u t / T). Returns (re, im)."""
    T = x.shape[-1]
    t = torch.arange(T, dtype=torch.float64)
    u = torch.arange(T // 2 + 1, dtype=torch.float64)
    angle = 2 * math.pi * u[:, None] * t[None, :] / T            # (F, T)
    re = (x[..., None, :] * torch.cos(angle)).sum(-1) / math.sqrt(T)
    im = -(x[..., None, :] * torch.sin(angle)).sum(-1) / math.sqrt(T)
    return re, im


def idft_half(re: torch.Tensor, im: torch.Tensor, T: int) -> torch.Tensor:
    """Inverse of :func:`dft_half` for a real signal: the spectrum is completed by Hermitian
    symmetry (X[T - u] = conj X[u]) and the real part of the inverse DFT is returned, so the
    imaginary parts of the DC and (even T) Nyquist bins do not contribute."""
    t = torch.arange(T, dtype=torch.float64)
    out = torch.zeros(re.shape[:-1] + (T,), dtype=torch.float64)
    for u in range(T):
        if u <= T // 2:
            a, b = re[..., u], im[..., u]
        else:
            a, b = re[..., T - u], -im[..., T - u]
        angle = 2 * math.pi * u * t / T
        # Re((a + jb) * exp(+j angle))
        out = out + a[..., None] * torch.cos(angle) - b[..., None] * torch.sin(angle)
    return out / math.sqrt(T)


def complex_channel_affine(re, im, w, b):
    """Per-channel complex ``w * z + b`` with w, b given as (2, C) = (real row, imaginary row)."""
    wr, wi = w[0][:, None], w[1][:, None]
    return re * wr - im * wi + b[0][:, None], re * wi + im * wr + b[1][:, None]


def softshrink(v, lambd):
    return torch.where(v > lambd, v - lambd, torch.where(v < -lambd, v + lambd, v * 0))


def depthwise_conv_same(x, weight, bias):
    """Conv(x): per-channel kernel (C, k), k odd, zero padding k // 2, plus bias (C,)."""
    k, T = weight.shape[1], x.shape[-1]
    padded = torch.cat([x.new_zeros(x.shape[:-1] + (k // 2,)), x,
                        x.new_zeros(x.shape[:-1] + (k // 2,))], dim=-1)
    out = x * 0 + bias[:, None]
    for i in range(k):
        out = out + weight[:, i][:, None] * padded[..., i:i + T]
    return out


def gmg_oracle(x, w1, b1, w2, b2, conv_w, conv_b, fc_w, fc_b, *, lambd, gating):
    """Eqs. 1-4 in float64. The learned filter of eq. 2 is the per-channel complex MLP of
    the design (complex affine, ReLU on real and imaginary parts, complex affine, softshrink)."""
    x, w1, b1, w2, b2, conv_w, conv_b, fc_w, fc_b = (
        p.to(torch.float64) for p in (x, w1, b1, w2, b2, conv_w, conv_b, fc_w, fc_b))
    T = x.shape[-1]
    Xr, Xi = dft_half(x)                                                  # eq. 1
    hr, hi = complex_channel_affine(Xr, Xi, w1, b1)                       # eq. 2
    hr, hi = torch.relu(hr), torch.relu(hi)
    Wr, Wi = complex_channel_affine(hr, hi, w2, b2)
    Wr, Wi = softshrink(Wr, lambd), softshrink(Wi, lambd)
    f_global = idft_half(Xr * Wr - Xi * Wi, Xr * Wi + Xi * Wr, T)        # eq. 3
    conv = depthwise_conv_same(x, conv_w, conv_b)
    fc = fc_w[:, None] * x + fc_b[:, None]
    if gating == "paper":                                                 # eq. 4
        f_local = torch.relu(f_global) * conv + f_global
        f_instant = torch.relu(f_local) * fc
        return x + f_instant + f_local
    local = conv * f_global                                               # public code
    return x + f_global + local + fc * local


def make_inputs(B, C, T, k, seed, dtype=torch.float64):
    """Inputs scaled so that the ReLUs and softshrink take both branches."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * s).to(dtype)

    return [r(B, C, T), r(2, C, s=0.8), r(2, C, s=0.3), r(2, C, s=0.8), r(2, C, s=0.05),
            r(C, k, s=0.5), r(C, s=0.2), r(C, s=0.8), r(C, s=0.2)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gating", ["paper", "release"])
@pytest.mark.parametrize("T,k", [(1, 3), (2, 1), (7, 3), (16, 5), (33, 31)])
def test_output_and_gradients_match_the_paper_oracle(backend, gating, T, k):
    inputs = [t.requires_grad_(True) for t in make_inputs(2, 3, T, k, seed=T * 7 + k)]
    want = gmg_oracle(*inputs, lambd=0.05, gating=gating)
    got = gmg(*inputs, lambd=0.05, gating=gating, backend=backend)
    torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)

    grad_out = torch.randn(want.shape, generator=torch.Generator().manual_seed(5),
                           dtype=torch.float64)
    want_grads = torch.autograd.grad(want, inputs, grad_out)
    got_grads = torch.autograd.grad(got, inputs, grad_out)
    for i, (a, e) in enumerate(zip(got_grads, want_grads)):
        torch.testing.assert_close(a, e, atol=1e-8, rtol=1e-8, msg=lambda m: f"input {i}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_matches_the_paper_oracle(backend):
    inputs = make_inputs(2, 8, 64, 3, seed=11, dtype=torch.float32)
    want = gmg_oracle(*inputs, lambd=1e-3, gating="paper")
    got = gmg(*inputs, lambd=1e-3, gating="paper", backend=backend)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=2e-5)


def test_paper_and_release_gating_differ():
    inputs = make_inputs(1, 4, 12, 3, seed=3)
    paper = gmg_oracle(*inputs, lambd=1e-3, gating="paper")
    release = gmg_oracle(*inputs, lambd=1e-3, gating="release")
    assert (paper - release).abs().max() > 1e-2           # the oracle distinguishes the two


def test_oracle_dft_round_trip_and_known_spectrum():
    x = torch.randn(1, 2, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(idft_half(*dft_half(x), 9), x)
    ones = torch.ones(1, 1, 4, dtype=torch.float64)    # DC only: X[0] = 4 / 2 = 2
    re, im = dft_half(ones)
    assert re.flatten().tolist() == pytest.approx([2.0, 0.0, 0.0]) and not im.abs().max() > 1e-12

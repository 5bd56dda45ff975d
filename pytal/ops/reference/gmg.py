"""Pure-PyTorch GMG token mixer: the specification of ``pytal.ops.gmg`` and its fallback.

Follows docs/ops.md, section "gmg", line by line. Everything is computed in ``compute_dtype(u.dtype)``
(float32 for float16 / bfloat16 / float32 inputs, float64 for float64 so that ``gradcheck`` is
meaningful) and the result is rounded once to ``u.dtype``, as the kernels do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pytal.ops.reference.dtypes import compute_dtype

GATINGS = ("paper", "release")


def cmul(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel complex product of ``z`` (B, C, F) complex with ``w`` (2, C) = (re, im).

    Returns the (real, imaginary) parts, each (B, C, F)."""
    wr, wi = w[0, :, None], w[1, :, None]
    return z.real * wr - z.imag * wi, z.imag * wr + z.real * wi


def global_filter(U: torch.Tensor, w1, b1, w2, b2, lambd: float) -> torch.Tensor:
    """The learned spectral filter W(U) (B, C, T//2+1) complex."""
    re, im = cmul(U, w1)
    h = torch.complex(torch.relu(re + b1[0, :, None]), torch.relu(im + b1[1, :, None]))
    re, im = cmul(h, w2)
    return torch.complex(F.softshrink(re + b2[0, :, None], lambd),
                         F.softshrink(im + b2[1, :, None], lambd))


def gmg(u: torch.Tensor, filter_w1: torch.Tensor, filter_b1: torch.Tensor,
        filter_w2: torch.Tensor, filter_b2: torch.Tensor, conv_weight: torch.Tensor,
        conv_bias: torch.Tensor, instant_weight: torch.Tensor, instant_bias: torch.Tensor,
        *, lambd: float = 1e-3, gating: str = "paper") -> torch.Tensor:
    """Reference of :func:`pytal.ops.gmg` (same arguments, no checks); returns (B, C, T)."""
    if gating not in GATINGS:
        raise ValueError(f"gating must be one of {list(GATINGS)}, got {gating!r}")
    if u.numel() == 0:
        return u * 0
    dtype = compute_dtype(u.dtype)
    x = u.to(dtype)
    w1, b1, w2, b2, cw, cb, a, ab = (p.to(dtype) for p in (
        filter_w1, filter_b1, filter_w2, filter_b2, conv_weight, conv_bias, instant_weight,
        instant_bias))
    T = x.shape[-1]

    U = torch.fft.rfft(x, n=T, dim=-1, norm="ortho")
    W = global_filter(U, w1, b1, w2, b2, lambd)
    g = torch.fft.irfft(U * W, n=T, dim=-1, norm="ortho")
    k = cw.shape[-1]
    l = F.conv1d(x, cw[:, None, :], cb, padding=k // 2, groups=x.shape[1])
    f = a[:, None] * x + ab[:, None]
    if gating == "paper":
        L = torch.relu(g) * l + g
        I = torch.relu(L) * f
        out = x + L + I
    else:
        L = l * g
        I = f * L
        out = x + g + L + I
    return out.to(u.dtype)

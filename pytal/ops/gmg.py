"""The fused Gated Multi-Granularity token mixer: ``pytal.ops.gmg``."""
from __future__ import annotations

from typing import Optional

import torch

from pytal.ops import _checks
from pytal.ops._backend import choose_backend, register_autograd, register_fake
from pytal.ops.reference import gmg as reference
from pytal.ops.reference.dtypes import compute_dtype

_OP = "gmg"
MAX_KERNEL_SIZE = 31
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_PARAM_NAMES = ("filter_w1", "filter_b1", "filter_w2", "filter_b2", "conv_weight", "conv_bias",
                "instant_weight", "instant_bias")


def gmg(u: torch.Tensor, filter_w1: torch.Tensor, filter_b1: torch.Tensor,
        filter_w2: torch.Tensor, filter_b2: torch.Tensor, conv_weight: torch.Tensor,
        conv_bias: torch.Tensor, instant_weight: torch.Tensor, instant_bias: torch.Tensor, *,
        lambd: float = 1e-3, gating: str = "paper", backend: Optional[str] = None) -> torch.Tensor:
    """Gated Multi-Granularity token mixer of the CLTDR-GMG block (Li et al., AAAI 2025).

    On ``u`` (usually ``LayerNorm(x)`` over channels), per batch item and channel::

        U = rfft(u, norm="ortho")                                  # along T
        W = softshrink(cmul(relu(cmul(U, w1) + b1), w2) + b2, lambd) # learned global filter
        g = irfft(U * W, n=T, norm="ortho")                        # global branch
        l = depthwise_conv1d(u, conv_weight, same zero padding) + conv_bias   # local
        f = instant_weight * u + instant_bias                      # instant (1x1 depthwise)
        "paper":   L = relu(g) * l + g;  I = relu(L) * f;  out = u + L + I       (eq. 4)
        "release": L = l * g;            I = f * L;        out = u + g + L + I   (public code)

    with ``cmul(z, w) = (z.re*w[0] - z.im*w[1], z.im*w[0] + z.re*w[1])`` and ReLU /
    softshrink applied to real and imaginary parts separately. Everything is computed in
    float32 (float64 for float64 ``u``), FFTs included, and rounded once to ``u.dtype``.
    Differentiable in ``u`` and every parameter (both backends). NaN / inf in the inputs are
    not checked (that would cost a pass and, on CUDA, a host sync): they propagate to the
    output as in the reference.

    Args:
        u: (B, C, T) float16, bfloat16, float32 or float64; any T >= 1.
        filter_w1, filter_b1, filter_w2, filter_b2: (2, C) per-channel complex numbers, row 0
            the real part and row 1 the imaginary part.
        conv_weight: (C, k) depthwise kernel, k odd and <= 31 ("same" zero padding k // 2).
        conv_bias, instant_weight, instant_bias: (C,).
            Parameters may be of any floating dtype (e.g. float32 with a float16 ``u``);
            their gradients come back in their own dtype. All on ``u``'s device.
        lambd: softshrink threshold, >= 0.
        gating: ``"paper"`` or ``"release"`` (see above).
        backend: None (extension when built for the device, else reference), ``"extension"``
            or ``"reference"``.

    Returns:
        (B, C, T) tensor of ``u``'s dtype.
    """
    params = (filter_w1, filter_b1, filter_w2, filter_b2, conv_weight, conv_bias,
              instant_weight, instant_bias)
    _check_args(u, params, lambd, gating)
    if choose_backend(_OP, u.device, backend) == "extension":
        return torch.ops.pytal.gmg(u, *params, float(lambd), gating)[0]
    return reference.gmg(u, *params, lambd=float(lambd), gating=gating)


def _check_args(u, params, lambd, gating) -> None:
    _checks.check_tensor("u", u, op=_OP)
    for name, p in zip(_PARAM_NAMES, params):
        _checks.check_tensor(name, p, op=_OP)
    if u.dim() != 3:
        raise ValueError(f"pytal.ops.gmg: u must have shape (B, C, T), got {tuple(u.shape)}")
    _checks.check_dtype("u", u, _FLOATS, op=_OP)
    C = u.shape[1]
    conv_weight = params[4]
    if conv_weight.dim() != 2:
        raise ValueError("pytal.ops.gmg: conv_weight must have shape (C, k), got "
                         f"{tuple(conv_weight.shape)}")
    k = conv_weight.shape[1]
    if k % 2 != 1 or k > MAX_KERNEL_SIZE:
        raise ValueError(f"pytal.ops.gmg: conv_weight must have an odd kernel size k <= "
                         f"{MAX_KERNEL_SIZE}, got k = {k}")
    shapes = [((2, C), "(2, C)")] * 4 + [((C, k), "(C, k)")] + [((C,), "(C,)")] * 3
    for name, p, (shape, layout) in zip(_PARAM_NAMES, params, shapes):
        _checks.check_shape(name, p, shape, f"{layout} = {shape}", op=_OP)
        _checks.check_dtype(name, p, _FLOATS, op=_OP)
        _checks.check_same_device(name, p, "u", u, op=_OP)
    _checks.check_choice("gating", gating, reference.GATINGS, op=_OP)
    lambd = float(lambd)
    if not (lambd >= 0.0 and lambd != float("inf")):
        raise ValueError(f"pytal.ops.gmg: lambd must be a finite number >= 0, got {lambd}")


@register_fake(_OP)
def _gmg_fake(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight, instant_bias, lambd,
              gating):
    return torch.empty_like(u), u.new_empty(u.shape, dtype=compute_dtype(u.dtype))


@register_fake("gmg_backward")
def _gmg_backward_fake(grad_out, u, global_branch, w1, b1, w2, b2, conv_weight, conv_bias,
                       instant_weight, instant_bias, lambd, gating):
    dtype = compute_dtype(u.dtype)
    params = (w1, b1, w2, b2, conv_weight, conv_bias, instant_weight, instant_bias)
    return [torch.empty_like(u)] + [p.new_empty(p.shape, dtype=dtype) for p in params]


def _setup_context(ctx, inputs, output):
    u, *params, lambd, gating = inputs
    ctx.save_for_backward(u, output[1], *params)
    ctx.lambd, ctx.gating = lambd, gating


def _backward(ctx, grad_out, grad_global):
    u, global_branch, *params = ctx.saved_tensors
    # global_branch is an internal output saved for backward; gradients through it are
    # not propagated (pytal.ops.gmg never returns it).
    grads = torch.ops.pytal.gmg_backward(grad_out.contiguous(), u, global_branch, *params,
                                         ctx.lambd, ctx.gating)
    return (grads[0], *(g.to(p.dtype) for g, p in zip(grads[1:], params)), None, None)


register_autograd(_OP, _backward, setup_context=_setup_context)

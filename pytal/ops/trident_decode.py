"""Fused Trident relative boundary decoding (TriDet's Trident head): ``pytal.ops.trident_decode``."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from pytal.ops import _checks
from pytal.ops._backend import choose_backend, register_autograd, register_fake
from pytal.ops.reference import trident_decode as reference
from pytal.ops.reference.dtypes import compute_dtype

_OP = "trident_decode"
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Values the kernels keep per (b, t, c, side) for the backward: the expected distance, the
#: largest window logit and 1 / the sum of exp(logit - largest) (csrc/trident_decode, kStats).
STATS_PER_SIDE = 3


def trident_decode(start_logits: torch.Tensor, end_logits: torch.Tensor,
                   offset_logits: torch.Tensor,
                   index: Optional[Sequence[torch.Tensor]] = None, *,
                   backend: Optional[str] = None) -> torch.Tensor:
    """Expected distances from each position to the action's start and end (Trident head).

    With K = num_bins + 1 bins, for every batch b, class c and position t::

        left[b,t,c]  = sum_i p_i * (K-1-i),  p = softmax_i(S[b,c,t-(K-1)+i] + O[b,t,0,i])
        right[b,t,c] = sum_i q_i * i,        q = softmax_i(E[b,c,t+i]       + O[b,t,1,i])

    where S (start logits) reads as 0 before position 0 and E (end logits) as 0 past T-1.
    Distances are in feature steps of the sequence; the segment predicted at t is
    ``[t - left, t + right]`` (times the level's stride). An FPN's levels are usually decoded
    one call per level, since the zero padding is per sequence.

    The kernels keep only O(B*T*Cb) state for the backward (never the (B, T, Cb, K)
    probabilities), accumulate in float32 for float16/bfloat16 inputs, and give gradients for
    all three inputs (the offset gradient is summed over classes). Without autograd they keep
    nothing beyond the output.

    Finite logits of any magnitude give finite outputs and gradients. Inputs are not scanned
    for NaN/inf (that pass would cost as much as the op): a NaN or +inf logit makes the
    outputs whose windows read it NaN; a -inf logit gives its bin probability 0 (a window of
    only -inf gives NaN); the same in every backend.

    Args:
        start_logits: (B, Cb, T) start-boundary logits; Cb classes, or 1 for a class-agnostic
            head. float16, bfloat16, float32 or float64.
        end_logits: (B, Cb, T) end-boundary logits, same dtype and device.
        offset_logits: (B, T, 2, K) centre-offset logits of the left (0) and right (1) side,
            same dtype and device; K >= 1.
        index: None for the dense decoding, or ``(batch, cls, pos)``: three (N,) int64
            tensors on the logits' device, decoding only those N triples (inference after
            top-k, or a loss on the positive points only); a value out of range raises
            ValueError (on CUDA: a device-side assertion at the next synchronisation). Only
            the N windows are read, and the backward keeps O(N) state and costs O(N*K)
            beyond zeroing the gradients; repeated triples add up. The backward is deterministic (no atomics).
        backend: None (extension when built for the device, else reference),
            ``"extension"`` or ``"reference"``.

    Returns:
        (B, T, Cb, 2) of the input dtype, ``[..., 0]`` = left and ``[..., 1]`` = right
        distance, each in [0, K-1]; or (N, 2) with ``index``.
    """
    _check_args(start_logits, end_logits, offset_logits)
    which = choose_backend(_OP, start_logits.device, backend)
    # Without autograd the backward's stats (three times the output's size) are not kept.
    save_stats = _needs_grad(start_logits, end_logits, offset_logits)
    if index is not None:
        # Index values are checked where they are read: by the extension's kernels, or here
        # for the reference, which does not check them.
        batch, cls, pos = _check_index(
            index, start_logits,
            values=which == "reference" and not torch.compiler.is_compiling())
        if which == "reference":
            return reference.trident_decode_index(start_logits, end_logits, offset_logits,
                                                  batch, cls, pos)
        out, _ = torch.ops.pytal.trident_decode_index(start_logits, end_logits, offset_logits,
                                                      batch, cls, pos, save_stats)
        return out
    if which == "reference":
        return reference.trident_decode(start_logits, end_logits, offset_logits)
    out, _ = torch.ops.pytal.trident_decode(start_logits, end_logits, offset_logits, save_stats)
    return out


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _check_args(start_logits, end_logits, offset_logits) -> None:
    for name, t in (("start_logits", start_logits), ("end_logits", end_logits),
                    ("offset_logits", offset_logits)):
        _checks.check_tensor(name, t, op=_OP)
    _checks.check_shape("start_logits", start_logits, (None, None, None), "(B, Cb, T)", op=_OP)
    b, c, t = start_logits.shape
    _checks.check_shape("end_logits", end_logits, (b, c, t), f"(B, Cb, T) = {(b, c, t)}",
                        op=_OP)
    _checks.check_shape("offset_logits", offset_logits, (b, t, 2, None),
                        f"(B, T, 2, K) = ({b}, {t}, 2, K)", op=_OP)
    if offset_logits.shape[-1] < 1:
        raise ValueError("pytal.ops.trident_decode: offset_logits must have K = num_bins + 1 "
                         f">= 1 bins, got shape {tuple(offset_logits.shape)}")
    _checks.check_dtype("start_logits", start_logits, _DTYPES, op=_OP)
    _checks.check_dtype("end_logits", end_logits, (start_logits.dtype,), op=_OP)
    _checks.check_dtype("offset_logits", offset_logits, (start_logits.dtype,), op=_OP)
    _checks.check_same_device("end_logits", end_logits, "start_logits", start_logits, op=_OP)
    _checks.check_same_device("offset_logits", offset_logits, "start_logits", start_logits,
                              op=_OP)


def _check_index(index, start_logits: torch.Tensor, *, values: bool = True):
    """Types, shapes, dtypes and devices of ``index``; also its values when ``values``."""
    if not isinstance(index, (tuple, list)) or len(index) != 3:
        raise TypeError("pytal.ops.trident_decode: index must be None or a (batch, cls, pos) "
                        f"tuple of three tensors, got {type(index).__name__}")
    b, c, t = start_logits.shape
    names = ("index[0] (batch)", "index[1] (cls)", "index[2] (pos)")
    n = None
    for name, idx, size in zip(names, index, (b, c, t)):
        _checks.check_tensor(name, idx, op=_OP)
        n = idx.shape[0] if (n is None and idx.dim() == 1) else n
        _checks.check_shape(name, idx, (n,), "(N,)" if n is None else f"(N,) = ({n},)", op=_OP)
        _checks.check_dtype(name, idx, (torch.int64,), op=_OP)
        _checks.check_same_device(name, idx, "start_logits", start_logits, op=_OP)
        if values:
            _checks.check_index_range(name, idx, size, op=_OP)
    return tuple(index)


@register_fake("trident_decode")
def _trident_decode_fake(start_logits, end_logits, offset_logits, save_stats=True):
    b, c, t = start_logits.shape
    stats_shape = (b, t, c, 2, STATS_PER_SIDE) if save_stats else (0,)
    return (start_logits.new_empty((b, t, c, 2)),
            start_logits.new_empty(stats_shape, dtype=compute_dtype(start_logits.dtype)))


@register_fake("trident_decode_backward")
def _trident_decode_backward_fake(grad_out, start_logits, end_logits, offset_logits, stats):
    return (torch.empty_like(start_logits, memory_format=torch.contiguous_format),
            torch.empty_like(end_logits, memory_format=torch.contiguous_format),
            torch.empty_like(offset_logits, memory_format=torch.contiguous_format))


@register_fake("trident_decode_index")
def _trident_decode_index_fake(start_logits, end_logits, offset_logits, batch, cls, pos,
                               save_stats=False):
    n = batch.shape[0]
    return (start_logits.new_empty((n, 2)),
            start_logits.new_empty((n, 2, STATS_PER_SIDE) if save_stats else (0,),
                                   dtype=compute_dtype(start_logits.dtype)))


@register_fake("trident_decode_index_backward")
def _trident_decode_index_backward_fake(grad_out, start_logits, end_logits, offset_logits,
                                        batch, cls, pos, stats):
    return _trident_decode_backward_fake(grad_out, start_logits, end_logits, offset_logits,
                                         stats)


def _setup_context(ctx, inputs, output) -> None:
    start_logits, end_logits, offset_logits, _save_stats = inputs
    _, stats = output
    ctx.save_for_backward(start_logits, end_logits, offset_logits, stats)
    _forget_stats_grad(ctx, stats)


def _forget_stats_grad(ctx, stats) -> None:
    ctx.mark_non_differentiable(stats)
    # Otherwise autograd allocates a zero gradient for stats, as large as stats itself.
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_out, _grad_stats):
    if grad_out is None:  # out did not reach the loss
        return None, None, None, None
    start_logits, end_logits, offset_logits, stats = ctx.saved_tensors
    grads = torch.ops.pytal.trident_decode_backward(grad_out.contiguous(), start_logits,
                                                    end_logits, offset_logits, stats)
    return (*grads, None)


def _setup_index_context(ctx, inputs, output) -> None:
    start_logits, end_logits, offset_logits, batch, cls, pos, _save_stats = inputs
    _, stats = output
    ctx.save_for_backward(start_logits, end_logits, offset_logits, batch, cls, pos, stats)
    _forget_stats_grad(ctx, stats)


def _index_backward(ctx, grad_out, _grad_stats):
    if grad_out is None:  # out did not reach the loss
        return (None,) * 7
    grads = torch.ops.pytal.trident_decode_index_backward(grad_out.contiguous(),
                                                          *ctx.saved_tensors)
    return (*grads, None, None, None, None)


register_autograd("trident_decode", _backward, setup_context=_setup_context)
register_autograd("trident_decode_index", _index_backward, setup_context=_setup_index_context)

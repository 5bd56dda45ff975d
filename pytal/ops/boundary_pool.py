"""Max / mean pooling of temporal features over intervals: ``pytal.ops.boundary_pool`` (AFSD's
boundary max pooling) and ``pytal.ops.segment_pool``."""
from __future__ import annotations

from typing import Optional

import torch

from pytal.ops import _checks
from pytal.ops._backend import choose_backend, register_autograd, register_fake
from pytal.ops.reference import boundary_pool as reference

_FEATURE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def boundary_pool(features: torch.Tensor, segments: torch.Tensor, *,
                  backend: Optional[str] = None) -> torch.Tensor:
    """Boundary max pooling (AFSD): the max of each channel over a proposal's start region
    (first half of the channels) or end region (second half).

    ``out[b, c, k] = max(features[b, c, lo:hi + 1])`` with ``[lo, hi] = segments[b, k, 0:2]``
    for ``c < C // 2`` and ``segments[b, k, 2:4]`` otherwise. Coordinates are truncated toward
    zero, then clamped to ``[0, T - 1]``. NaN features count as maximal (as in ``torch.max``).
    The gradient of each output goes to the first position holding the maximum. Rows whose
    intervals are long are answered from a sparse table in O(1) per output (after an
    O(T log T) build per row), so long intervals (ActivityNet) cost no O(length) scan.

    Args:
        features: (B, C, T) float16, bfloat16, float32 or float64; C even.
        segments: (B, K, 4) ``[start_lo, start_hi, end_lo, end_hi]`` in feature steps, any
            floating or integer dtype, on the device of ``features``; NaN, or ``lo > hi`` after
            truncation, raise ValueError (on CUDA: a device-side assertion at the next
            synchronisation, so that a valid call never waits for the device).
        backend: None (extension when built for the device, else reference), ``"extension"``
            or ``"reference"``.

    Returns:
        (B, C, K) tensor of the dtype of ``features``; differentiable with respect to features.
    """
    _check_args("boundary_pool", features, segments, groups=2)
    if choose_backend("boundary_pool", features.device, backend) == "extension":
        return torch.ops.pytal.boundary_pool(features, segments)
    _check_values("boundary_pool", segments)
    return reference.boundary_pool(features, segments)


def segment_pool(features: torch.Tensor, segments: torch.Tensor, *, mode: str = "max",
                 backend: Optional[str] = None) -> torch.Tensor:
    """Max or mean of every channel over one interval per output.

    ``out[b, c, k] = reduce(features[b, c, lo:hi + 1])`` with ``[lo, hi] = segments[b, k]``,
    truncated toward zero, then clamped to ``[0, T - 1]``. ``"max"``: NaN counts as maximal and
    the gradient goes to the first argmax. ``"mean"``: summed in float64, rounded to the
    features' dtype; the gradient is spread evenly over the interval.

    Args:
        features: (B, C, T) float16, bfloat16, float32 or float64.
        segments: (B, K, 2) ``[lo, hi]`` in feature steps, any floating or integer dtype, on the
            device of ``features``; NaN, or ``lo > hi`` after truncation, raise ValueError
            (on CUDA: a device-side assertion, as in ``boundary_pool``).
        mode: ``"max"`` or ``"mean"``.
        backend: None, ``"extension"`` or ``"reference"`` (see ``boundary_pool``).

    Returns:
        (B, C, K) tensor of the dtype of ``features``; differentiable with respect to features.
    """
    _checks.check_choice("mode", mode, reference.MODES, op="segment_pool")
    _check_args("segment_pool", features, segments, groups=1)
    if choose_backend("segment_pool", features.device, backend) == "extension":
        return torch.ops.pytal.segment_pool(features, segments, mode)
    _check_values("segment_pool", segments)
    return reference.segment_pool(features, segments, mode=mode)


def _check_args(op: str, features, segments, *, groups: int) -> None:
    width = 2 * groups
    _checks.check_tensor("features", features, op=op)
    _checks.check_tensor("segments", segments, op=op)
    _checks.check_shape("features", features, (None, None, None), "(B, C, T)", op=op)
    _checks.check_dtype("features", features, _FEATURE_DTYPES, op=op)
    batch, channels, length = features.shape
    _checks.check_shape("segments", segments, (batch, None, width), f"(B, K, {width}) with "
                        f"B = {batch}", op=op)
    if segments.dtype == torch.bool or segments.is_complex():
        raise TypeError(f"pytal.ops.{op}: segments must have a floating or integer dtype, got "
                        f"{str(segments.dtype).replace('torch.', '')}")
    _checks.check_same_device("segments", segments, "features", features, op=op)
    if channels % groups:
        raise ValueError(f"pytal.ops.{op}: features must have an even number of channels C "
                         f"(c < C/2 pool the start region, the others the end region), got "
                         f"C = {channels}")
    if length == 0 and segments.numel():
        raise ValueError(f"pytal.ops.{op}: features must have T >= 1 to pool over segments, "
                         "got T = 0")


def _check_values(op: str, segments) -> None:
    """Segment values for the reference, which does not check them (the extension checks them
    as it converts segments into intervals). Skipped while torch.compile traces: a value check
    cannot be part of a graph."""
    if not torch.compiler.is_compiling():
        _checks.check_intervals("segments", segments, op=op)


def _pool_output_fake(features, segments):
    return features.new_empty(features.shape[0], features.shape[1], segments.shape[1])


@register_fake("boundary_pool")
def _boundary_pool_fake(features, segments):
    return _pool_output_fake(features, segments)


@register_fake("boundary_pool_backward")
def _boundary_pool_backward_fake(grad_output, features, segments):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


@register_fake("segment_pool")
def _segment_pool_fake(features, segments, mode):
    return _pool_output_fake(features, segments)


@register_fake("segment_pool_backward")
def _segment_pool_backward_fake(grad_output, features, segments, mode):
    return torch.empty_like(features, memory_format=torch.contiguous_format)


def _save_inputs(ctx, inputs, output) -> None:
    features, segments = inputs[0], inputs[1]
    ctx.save_for_backward(features, segments)
    ctx.mode = inputs[2] if len(inputs) > 2 else None


def _boundary_pool_backward(ctx, grad_output):
    features, segments = ctx.saved_tensors
    grad = torch.ops.pytal.boundary_pool_backward(grad_output.contiguous(), features, segments)
    return grad, None


def _segment_pool_backward(ctx, grad_output):
    features, segments = ctx.saved_tensors
    grad = torch.ops.pytal.segment_pool_backward(grad_output.contiguous(), features, segments,
                                                 ctx.mode)
    return grad, None, None


register_autograd("boundary_pool", _boundary_pool_backward, setup_context=_save_inputs)
register_autograd("segment_pool", _segment_pool_backward, setup_context=_save_inputs)

"""Argument checks shared by the Python wrappers of every op. They run before dispatch, for
both backends, and name the argument and what was expected."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import torch


def check_tensor(name: str, value, *, op: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"pytal.ops.{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def check_shape(name: str, t: torch.Tensor, expected: Sequence[Optional[int]], layout: str,
                *, op: str) -> None:
    """``expected`` gives each dimension's size, or None for any size; ``layout`` is what the
    message shows, e.g. "(N, 2)"."""
    ok = t.dim() == len(expected) and all(e is None or s == e for s, e in zip(t.shape, expected))
    if not ok:
        raise ValueError(f"pytal.ops.{op}: {name} must have shape {layout}, got {tuple(t.shape)}")


def check_dtype(name: str, t: torch.Tensor, allowed: Iterable[torch.dtype], *, op: str) -> None:
    allowed = tuple(allowed)
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"pytal.ops.{op}: {name} must have dtype in ({names}), got "
                        f"{str(t.dtype).replace('torch.', '')}")


def check_same_device(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor, *,
                      op: str) -> None:
    if t.device != ref.device:
        raise ValueError(f"pytal.ops.{op}: {name} must be on the device of {ref_name} "
                         f"({ref.device}), got {t.device}")


def check_finite(name: str, t: torch.Tensor, *, op: str) -> None:
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"pytal.ops.{op}: {name} must be finite, got NaN or infinity")


def check_choice(name: str, value, choices: Sequence, *, op: str) -> None:
    if value not in choices:
        raise ValueError(f"pytal.ops.{op}: {name} must be one of {list(choices)}, got {value!r}")


def check_intervals(name: str, segments: torch.Tensor, *, op: str) -> None:
    """``segments`` (..., 2G) holds [lo, hi] pairs: no NaN, and lo <= hi once both are
    truncated toward zero (one device synchronisation when all is well)."""
    if not segments.numel():
        return
    is_float = segments.is_floating_point()
    pairs = (segments.trunc() if is_float else segments).unflatten(-1, (-1, 2))
    bad = pairs[..., 0] > pairs[..., 1]
    if is_float:
        bad = bad | segments.isnan().unflatten(-1, (-1, 2)).any(-1)
    if not bool(bad.any()):
        return
    if is_float and bool(segments.isnan().any()):
        raise ValueError(f"pytal.ops.{op}: {name} must not contain NaN")
    raise ValueError(f"pytal.ops.{op}: {name} must satisfy lo <= hi after truncation to "
                     "integers for every [lo, hi] pair (columns 0 <= 1"
                     + (" and 2 <= 3" if segments.shape[-1] == 4 else "") + ")")


def check_index_range(name: str, t: torch.Tensor, size: int, *, op: str) -> None:
    """Integer tensor ``t`` holds values in [0, size) (one host synchronisation on CUDA)."""
    if t.numel() and not bool(((t >= 0) & (t < size)).all()):
        raise ValueError(f"pytal.ops.{op}: {name} must hold values in [0, {size}), got "
                         f"values in [{int(t.min())}, {int(t.max())}]")

"""Pure-PyTorch boundary_pool and segment_pool: the specification of ``pytal.ops.boundary_pool``
and ``pytal.ops.segment_pool`` and their fallback.

Written for clarity, not speed: every interval is gathered into a window of the longest
interval's length (positions past ``hi`` repeat ``hi``), then reduced, in chunks of intervals
to bound memory. ``torch.max`` over a dimension returns the first maximal value (NaN counts as
maximal), so autograd sends each output's gradient to the first argmax, as the kernels do.
"""
from __future__ import annotations

import torch

from pytal.ops.reference.dtypes import compute_dtype

MODES = ("max", "mean")

# Elements of one gathered chunk (B * channels * intervals * window): about 64 MiB of float32.
_CHUNK_ELEMENTS = 1 << 24


def interval_bounds(segments: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi), each (B, K, G) int64, of segments (B, K, 2G) given as [lo, hi] pairs:
    truncated toward zero, then clamped to [0, length - 1]."""
    wide = segments.double().trunc() if segments.is_floating_point() else segments.long()
    bounds = wide.clamp(0, length - 1).long()
    return bounds[..., 0::2], bounds[..., 1::2]


def _pool_group(features: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                mode: str) -> torch.Tensor:
    """features (B, C, T), lo / hi (B, K) -> (B, C, K): pool of features[b, c, lo:hi+1]."""
    batch, channels, _ = features.shape
    num = lo.shape[1]
    window = int((hi - lo).max()) + 1
    offsets = torch.arange(window, device=features.device)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * channels * window))
    acc_dtype = compute_dtype(features.dtype)
    parts = []
    for start in range(0, num, per_chunk):
        l, h = lo[:, start:start + per_chunk, None], hi[:, start:start + per_chunk, None]
        k = l.shape[1]
        index = torch.minimum(l + offsets, h)  # (B, k, window)
        gathered = features.gather(2, index.reshape(batch, 1, k * window)
                                   .expand(batch, channels, k * window))
        gathered = gathered.reshape(batch, channels, k, window)
        if mode == "max":
            parts.append(gathered.max(dim=3).values)
        else:
            valid = (offsets <= h - l)[:, None]  # (B, 1, k, window)
            zero = gathered.new_zeros(())
            total = torch.where(valid, gathered, zero).to(acc_dtype).sum(dim=3)
            parts.append((total / (h - l + 1)[:, None, :, 0].to(acc_dtype)).to(features.dtype))
    return torch.cat(parts, dim=2)


def _pool(features: torch.Tensor, segments: torch.Tensor, mode: str) -> torch.Tensor:
    batch, channels, length = features.shape
    num = segments.shape[1]
    if batch == 0 or channels == 0 or num == 0:
        # An empty result that stays connected to features for autograd.
        return features.narrow(2, 0, 0).sum(2, keepdim=True).expand(batch, channels, num)
    lo, hi = interval_bounds(segments, length)
    groups = lo.shape[2]
    per_group = channels // groups
    outs = [_pool_group(features[:, g * per_group:(g + 1) * per_group], lo[..., g], hi[..., g],
                        mode) for g in range(groups)]
    return torch.cat(outs, dim=1)


def boundary_pool(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Boundary max pooling; see ``pytal.ops.boundary_pool`` for the contract.

    Arguments are assumed valid (``pytal.ops.boundary_pool`` checks them).
    """
    return _pool(features, segments, "max")


def segment_pool(features: torch.Tensor, segments: torch.Tensor, *,
                 mode: str = "max") -> torch.Tensor:
    """Pooling over one interval per output; see ``pytal.ops.segment_pool`` for the contract.

    Arguments are assumed valid (``pytal.ops.segment_pool`` checks them).
    """
    return _pool(features, segments, mode)

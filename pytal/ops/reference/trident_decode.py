"""Pure-PyTorch Trident decoding: the specification of ``pytal.ops.trident_decode`` and its
fallback.

It follows the formula literally (TriDet's Trident head): zero-padded windows of K boundary
logits, plus the offset logits, softmax over the K bins, expectation of the distance. It
materialises the (B, T, Cb, K) window logits and probabilities, which is what the kernels
avoid. Arithmetic is done in float32 for float16/bfloat16 inputs (float64 stays float64) and
the result is cast back to the input dtype, like the kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pytal.ops.reference.dtypes import compute_dtype


def start_windows(start_logits: torch.Tensor, num_bins: int) -> torch.Tensor:
    """(B, Cb, T) -> (B, T, Cb, K): window i of position t is S[t - (K-1) + i], 0 before 0."""
    padded = F.pad(start_logits, (num_bins, 1))  # +1 on the right: T = 0 still unfolds
    return padded.unfold(-1, num_bins + 1, 1)[:, :, :start_logits.shape[-1]].permute(0, 2, 1, 3)


def end_windows(end_logits: torch.Tensor, num_bins: int) -> torch.Tensor:
    """(B, Cb, T) -> (B, T, Cb, K): window i of position t is E[t + i], 0 past T - 1."""
    padded = F.pad(end_logits, (0, num_bins + 1))  # one more: T = 0 still unfolds
    return padded.unfold(-1, num_bins + 1, 1)[:, :, :end_logits.shape[-1]].permute(0, 2, 1, 3)


def _expected_distance(window_logits: torch.Tensor, offsets: torch.Tensor,
                       distances: torch.Tensor) -> torch.Tensor:
    """window_logits (B, T, Cb, K) + offsets (B, T, 1, K) -> softmax over K -> expectation of
    ``distances`` (K,): (B, T, Cb)."""
    prob = torch.softmax(window_logits + offsets, dim=-1)
    return prob @ distances


def trident_decode(start_logits: torch.Tensor, end_logits: torch.Tensor,
                   offset_logits: torch.Tensor) -> torch.Tensor:
    """Dense Trident decoding; see ``pytal.ops.trident_decode`` for the contract.

    start_logits, end_logits (B, Cb, T); offset_logits (B, T, 2, K) -> (B, T, Cb, 2) expected
    distances (left, right) in feature steps. Arguments are assumed valid.
    """
    dtype = start_logits.dtype
    ct = compute_dtype(dtype)
    num_bins = offset_logits.shape[-1] - 1
    s, e, o = start_logits.to(ct), end_logits.to(ct), offset_logits.to(ct)
    bins = torch.arange(num_bins + 1, dtype=ct, device=o.device)
    left = _expected_distance(start_windows(s, num_bins), o[:, :, 0:1, :], bins.flip(0))
    right = _expected_distance(end_windows(e, num_bins), o[:, :, 1:2, :], bins)
    return torch.stack([left, right], dim=-1).to(dtype)


def trident_decode_index(start_logits: torch.Tensor, end_logits: torch.Tensor,
                         offset_logits: torch.Tensor, batch: torch.Tensor, cls: torch.Tensor,
                         pos: torch.Tensor) -> torch.Tensor:
    """Trident decoding of the (batch[n], cls[n], pos[n]) triples only: (N, 2).

    Gathers the N windows directly (no dense (B, T, Cb, K) tensor). Indices are assumed in range.
    """
    dtype = start_logits.dtype
    ct = compute_dtype(dtype)
    k = offset_logits.shape[-1]
    length = start_logits.shape[-1]
    bins = torch.arange(k, dtype=ct, device=offset_logits.device)
    left_at = pos[:, None] - (k - 1) + bins.long()[None, :]  # (N, K) start-logit positions
    right_at = pos[:, None] + bins.long()[None, :]            # (N, K) end-logit positions
    row = ((batch * start_logits.shape[1] + cls) * length)[:, None]  # (N, 1) flat row starts
    zs = start_logits.reshape(-1)[row + left_at.clamp(min=0)].to(ct)
    ze = end_logits.reshape(-1)[row + right_at.clamp(max=length - 1)].to(ct)
    zs = torch.where(left_at >= 0, zs, 0.0)
    ze = torch.where(right_at < length, ze, 0.0)
    o = offset_logits[batch, pos].to(ct)                      # (N, 2, K)
    left = torch.softmax(zs + o[:, 0], dim=-1) @ bins.flip(0)
    right = torch.softmax(ze + o[:, 1], dim=-1) @ bins
    return torch.stack([left, right], dim=-1).to(dtype)

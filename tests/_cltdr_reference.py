"""Test-only helpers for the CLTDR-GMG tests (not part of pytal)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def trident_decode_dense(start_logits: torch.Tensor, end_logits: torch.Tensor,
                         offset_logits: torch.Tensor) -> torch.Tensor:
    """Dense Trident decoding per DESIGN.md, for tests of the head -> decode plumbing only (the
    model calls pytal.ops.trident_decode): (B,Cb,T), (B,Cb,T), (B,T,2,K) -> (B,T,Cb,2) expected
    (left, right) distances in feature steps of the level. S reads 0 before step 0, E past T-1."""
    k = offset_logits.shape[-1]
    s = F.pad(start_logits, (k - 1, 0)).unfold(-1, k, 1).permute(0, 2, 1, 3)   # S[t-K+1+i]
    e = F.pad(end_logits, (0, k - 1)).unfold(-1, k, 1).permute(0, 2, 1, 3)     # E[t+i]
    p = torch.softmax(s + offset_logits[:, :, None, 0], dim=-1)
    q = torch.softmax(e + offset_logits[:, :, None, 1], dim=-1)
    bins = torch.arange(k, dtype=p.dtype, device=p.device)
    return torch.stack(((p * bins.flip(0)).sum(-1), (q * bins).sum(-1)), dim=-1)

"""Test-only helpers for the CLTDR-GMG tests (not part of pytal)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models.cltdr_gmg.decoder import CrossLayerFusion, DecoupledClassification, DecoupledRegression
from pytal.models.cltdr_gmg.heads import ClassificationHead, RefineHead, TridentHead


class DecoderAndHeads(nn.Module):
    """The decoder and heads of pytal's CLTDRGMG under the names the model gives them, on
    fixed (B, channels, T_l) pyramid features: for tests that skip the encoder."""

    def __init__(self, channels: int, head_dim: int, levels: int, num_classes: int,
                 num_bins: int) -> None:
        super().__init__()
        self.cls_decoupler = DecoupledClassification(channels)
        self.reg_decoupler = DecoupledRegression(channels)
        self.fusion = CrossLayerFusion(channels)
        self.cls_head = ClassificationHead(channels, head_dim, num_classes)
        self.trident_head = TridentHead(channels, head_dim, levels, num_classes, num_bins)
        self.refine_head = RefineHead(channels, head_dim, num_classes)

    def forward(self, feats, masks):
        cls = self.cls_head(self.cls_decoupler(feats, masks), masks)
        start, end, offset = self.trident_head(self.reg_decoupler(feats, masks), masks,
                                               boundary_feats=feats)
        ref, ds, de = self.refine_head(self.fusion(feats, masks), masks)
        return cls, start, end, offset, ref, ds, de


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

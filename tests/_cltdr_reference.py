"""Test-only helpers for the CLTDR-GMG tests (not part of pytal)."""
from __future__ import annotations

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

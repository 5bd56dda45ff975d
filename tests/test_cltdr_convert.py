"""CLTDR-GMG: converting a state dict with the public code's parameter names and shapes."""
from __future__ import annotations

import pytest
import torch

from pytal.models.cltdr_gmg.convert import convert_release_checkpoint, extract_release_state_dict

from _cltdr_reference import DecoderAndHeads

C, H, NC, BINS, LEVELS = 8, 6, 3, 4, 4


def _release_head_shapes(prefix, out_ch, k_out=3, scales=False):
    shapes = {
        f"{prefix}.head.0.conv.weight": (H, C, 3),
        f"{prefix}.head.1.conv.weight": (H, H, 3),
        f"{prefix}.norm.0.weight": (1, H, 1), f"{prefix}.norm.0.bias": (1, H, 1),
        f"{prefix}.norm.1.weight": (1, H, 1), f"{prefix}.norm.1.bias": (1, H, 1),
    }
    if scales:
        shapes.update({f"{prefix}.scale.{i}.scale": () for i in range(LEVELS)})
    return shapes


def _release_state_dict():
    """Names and shapes as the public code's TriDet/CLTDR-GMG model has them (fpn_dim = C,
    head_dim = H, head_num_layers 3 with LayerNorm, num_bins BINS), decoder and heads only."""
    shapes = {}
    for name in ("decls.contrans", "dereg.down", "cross_level.conv", "cross_level.convtrans"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (C, C, 3), (C,)
    for name in ("decls.conv_l", "decls.attn.1", "dereg.conv_l", "dereg.attn.1"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (C, C, 1), (C,)
    for name in ("cls_head", "start_head", "end_head"):
        shapes.update(_release_head_shapes(name, NC))
        shapes[f"{name}.cls_head.conv.weight"], shapes[f"{name}.cls_head.conv.bias"] = (NC, H, 3), (NC,)
    shapes.update(_release_head_shapes("reg_head", 2 * (BINS + 1), scales=True))
    shapes["reg_head.offset_head.conv.weight"] = (2 * (BINS + 1), H, 3)
    shapes["reg_head.offset_head.conv.bias"] = (2 * (BINS + 1),)
    shapes.update(_release_head_shapes("refineHead", NC, scales=True))
    for name, k in (("s_offset_head", 7), ("e_offset_head", 7), ("prob_head", 3)):
        shapes[f"refineHead.{name}.conv.weight"] = (NC, H, k)
        shapes[f"refineHead.{name}.conv.bias"] = (NC,)
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def test_convert_decoder_and_heads_loads_strictly():
    release = _release_state_dict()
    converted = convert_release_checkpoint({f"module.{k}": v for k, v in release.items()})
    model = DecoderAndHeads(C, H, LEVELS, NC, BINS)
    model.load_state_dict(converted, strict=True)
    sd = model.state_dict()
    pairs = {
        "decls.contrans.weight": "cls_decoupler.upsample.weight",
        "decls.conv_l.bias": "cls_decoupler.attention.lateral.bias",
        "dereg.attn.1.weight": "reg_decoupler.attention.fc.weight",
        "cross_level.convtrans.weight": "fusion.upsample.weight",
        "cross_level.conv.weight": "fusion.downsample.weight",
        "cls_head.cls_head.conv.bias": "cls_head.classifier.conv.bias",
        "start_head.norm.1.weight": "trident_head.start.tower.norms.1.weight",
        "end_head.head.0.conv.weight": "trident_head.end.tower.convs.0.conv.weight",
        "reg_head.scale.3.scale": "trident_head.offset.scales.3.scale",
        "reg_head.offset_head.conv.weight": "trident_head.offset.offset.conv.weight",
        "refineHead.prob_head.conv.weight": "refine_head.logits.conv.weight",
        "refineHead.s_offset_head.conv.weight": "refine_head.start_offset.conv.weight",
        "refineHead.e_offset_head.conv.bias": "refine_head.end_offset.conv.bias",
    }
    for old, new in pairs.items():
        assert torch.equal(sd[new], release[old]), (old, new)
    assert not any("refineHead.scale" in k or "refine_head.scale" in k for k in converted)


def test_convert_encoder_names_and_block_converter():
    release = {
        "module.backbone.embd.0.conv.weight": torch.zeros(C, 5, 3),
        "module.backbone.embd_norm.0.weight": torch.zeros(1, C, 1),
        "module.backbone.stem.0.w1": torch.zeros(2, C, 1),
        "module.backbone.branch.4.convw.weight": torch.zeros(C, 1, 3),
        "module.neck.fpn_norms.5.bias": torch.zeros(1, C, 1),
    }
    seen = []

    def record(state, prefix):
        seen.append(prefix)
        return dict(state)

    out = convert_release_checkpoint(release, block_converter=record)
    assert sorted(out) == ["encoder.branch.4.convw.weight", "encoder.embed.convs.0.conv.weight",
                           "encoder.embed.norms.0.weight", "encoder.stem.0.w1", "neck.norms.5.bias"]
    assert seen == ["encoder.branch.4.", "encoder.stem.0."]


def test_convert_uses_gmg_block_conversion():
    out = convert_release_checkpoint({"backbone.stem.0.w1": torch.zeros(2, C, 1)})
    assert out["encoder.stem.0.filter_w1"].shape == (2, C)


def test_convert_rejects_unknown_keys():
    with pytest.raises(KeyError, match="backbone.transformer"):
        convert_release_checkpoint({"backbone.transformer.0.weight": torch.zeros(1)})


def test_extract_release_state_dict():
    raw, ema = {"a": torch.zeros(1)}, {"a": torch.ones(1)}
    ckpt = {"epoch": 3, "state_dict": raw, "state_dict_ema": ema}
    assert extract_release_state_dict(ckpt) is ema
    assert extract_release_state_dict(ckpt, "raw") is raw
    assert extract_release_state_dict({"state_dict": raw, "state_dict_ema": None}) is raw
    assert extract_release_state_dict(raw) is raw
    with pytest.raises(ValueError, match="weights"):
        extract_release_state_dict(ckpt, "best")

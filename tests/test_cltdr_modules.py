"""CLTDR-GMG layers, decoder modules, heads and refinement: shapes for odd lengths and masks,
padding invariance, and the head -> Trident-decode plumbing."""
from __future__ import annotations

import math

import pytest
import torch

from pytal.models.cltdr_gmg.decoder import (CrossLayerFusion, DecoupledClassification,
                                            DecoupledRegression, match_length, masked_mean)
from pytal.models.cltdr_gmg.heads import ClassificationHead, RefineHead, TridentHead, prior_bias
from pytal.models.cltdr_gmg.refinement import refine_offsets, refined_logits, refined_scores
from pytal.nn.norm import ChannelLayerNorm
from pytal.nn.masked_conv import MaskedConv1D, downsample_mask
from pytal.nn.scale import Scale
from pytal.ops.reference.trident_decode import trident_decode as trident_decode_dense

C = 8


def _pyramid(lengths, valid, batch=2, seed=0):
    """Features and masks for levels of ``lengths``; video b has ``valid[b]`` valid input steps,
    masks propagated by stride-2 nearest downsampling (as the backbone does)."""
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(batch, C, n, generator=g) for n in lengths]
    mask = (torch.arange(lengths[0])[None, :] < torch.tensor(valid)[:, None])[:, None]
    masks = [mask]
    for n in lengths[1:]:
        masks.append(downsample_mask(masks[-1], 2, n))
    return feats, masks


def _garbage_in_padding(feats, masks):
    return [torch.where(m, f, torch.full_like(f, 1e3)) for f, m in zip(feats, masks)]


# --- pytal.nn layers --------------------------------------------------------------------

def test_masked_conv_and_mask_downsampling():
    conv = MaskedConv1D(3, 5, 3)
    assert conv.conv.bias.abs().sum() == 0
    x = torch.randn(2, 3, 7)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])[:, None]
    out, out_mask = conv(x, mask)
    assert out.shape == (2, 5, 7) and torch.equal(out_mask, mask)
    assert out[1, :, 4:].abs().sum() == 0
    down = MaskedConv1D(3, 5, 3, stride=2)
    out, out_mask = down(x, mask)
    assert out.shape == (2, 5, 4) and out_mask[1, 0].tolist() == [True, True, False, False]
    # equals nearest interpolation when the length divides
    m = torch.rand(3, 1, 12) > 0.5
    ref = torch.nn.functional.interpolate(m.float(), size=6, mode="nearest").bool()
    assert torch.equal(downsample_mask(m, 2, 6), ref)
    assert downsample_mask(m, 2, 8)[..., 6:].sum() == 0
    with pytest.raises(ValueError, match="kernel_size"):
        MaskedConv1D(3, 5, 2)
    with pytest.raises(ValueError, match="mask"):
        conv(x, mask[:, :, :5])


def test_channel_layer_norm_and_scale():
    ln = ChannelLayerNorm(4)
    x = torch.randn(2, 4, 5)
    ref = torch.nn.functional.layer_norm(x.transpose(1, 2), (4,)).transpose(1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-5)
    assert ln.weight.shape == (1, 4, 1)
    with pytest.raises(ValueError, match="x"):
        ln(torch.randn(2, 3, 5))
    s = Scale(2.0)
    assert s.scale.shape == () and torch.equal(s(torch.ones(3)), torch.full((3,), 2.0))


# --- decoder -------------------------------------------------------------------------------

def test_match_length_and_masked_mean():
    x = torch.arange(6.0).view(1, 1, 6)
    assert match_length(x, 4).tolist() == [[[0, 1, 2, 3]]]
    assert match_length(x, 8)[0, 0, 6:].tolist() == [0, 0]
    m = torch.tensor([[[True, True, False, False, False, False]]])
    assert masked_mean(x, m).item() == 0.5 and masked_mean(x, None).item() == 2.5


@pytest.mark.parametrize("lengths", [(13, 7, 4, 2, 1), (13, 6, 3, 1), (16, 8, 4, 2)])
@pytest.mark.parametrize("module_cls", [DecoupledClassification, DecoupledRegression, CrossLayerFusion])
def test_decoder_shapes_and_padding(module_cls, lengths):
    torch.manual_seed(0)
    module = module_cls(C)
    feats, masks = _pyramid(lengths, valid=[lengths[0], 9])
    out = module(feats, masks)
    assert [o.shape for o in out] == [f.shape for f in feats]
    for o, m in zip(out, masks):
        assert (o * ~m).abs().sum() == 0                        # zero at padded steps
    # valid steps ignore whatever sits in the padding
    out2 = module(_garbage_in_padding(feats, masks), masks)
    for a, b in zip(out, out2):
        assert torch.allclose(a, b, atol=1e-5)
    # and a padded video gives the same valid outputs as the same video alone, unpadded
    n_valid = [int(m[1].sum()) for m in masks]
    alone = module([f[1:, :, :n] for f, n in zip(feats, n_valid)],
                   [m[1:, :, :n] for m, n in zip(masks, n_valid)])
    for a, b, n in zip(out, alone, n_valid):
        assert torch.allclose(a[1:, :, :n], b, atol=1e-5)


def test_decoupled_classification_formula_release_mode():
    torch.manual_seed(0)
    m = DecoupledClassification(C, masked=False)
    feats, masks = _pyramid((8, 4, 2), valid=[8, 5])
    out = m(feats, masks)
    up = m.upsample(feats[1])
    w = torch.sigmoid(m.attention.fc(torch.relu(up + m.attention.lateral(feats[0])).mean(-1, keepdim=True)))
    assert torch.allclose(out[0], feats[0] + w * up, atol=1e-6)
    assert torch.equal(out[2], feats[2])                     # coarsest level passes through


def test_decoupled_regression_and_fusion_formulas_release_mode():
    torch.manual_seed(0)
    reg = DecoupledRegression(C, masked=False)
    fus = CrossLayerFusion(C, masked=False)
    feats, masks = _pyramid((8, 4, 2), valid=[8, 5])
    out = reg(feats, masks)
    down = reg.downsample(feats[0])
    w = torch.sigmoid(reg.attention.fc(torch.relu(down + reg.attention.lateral(feats[1])).mean(-1, keepdim=True)))
    assert torch.allclose(out[1], feats[1] + w * down, atol=1e-6)
    assert torch.equal(out[0], feats[0])                     # finest level passes through
    out = fus(feats, masks)
    assert torch.allclose(out[0], feats[0] + fus.upsample(feats[1]), atol=1e-6)
    assert torch.allclose(out[1], fus.downsample(feats[0]) + feats[1] + fus.upsample(feats[2]), atol=1e-6)
    assert torch.allclose(out[2], fus.downsample(feats[1]) + feats[2], atol=1e-6)


def test_decoder_single_level_and_errors():
    feats, masks = _pyramid((5,), valid=[5, 3])
    for module in (DecoupledClassification(C), DecoupledRegression(C), CrossLayerFusion(C)):
        out = module(feats, masks)
        assert len(out) == 1 and out[0].shape == feats[0].shape
    with pytest.raises(ValueError, match="masks"):
        CrossLayerFusion(C)(feats, [])
    with pytest.raises(ValueError, match=r"feats\[0\]"):
        DecoupledClassification(C)([torch.randn(2, C + 1, 5)], masks)


# --- heads ---------------------------------------------------------------------------------

LENGTHS = (13, 7, 4, 2)


def test_classification_head():
    head = ClassificationHead(C, 6, 3, prior_prob=0.01, empty_cls=[2])
    assert torch.allclose(torch.sigmoid(head.classifier.conv.bias[:2]), torch.tensor(0.01))
    assert torch.sigmoid(head.classifier.conv.bias[2]) < 1e-5
    feats, masks = _pyramid(LENGTHS, valid=[13, 9])
    out = head(feats, masks)
    assert [o.shape for o in out] == [(2, 3, n) for n in LENGTHS]
    for o, m in zip(out, masks):
        assert (o * ~m).abs().sum() == 0
    assert prior_bias(0.5) == 0.0
    with pytest.raises(ValueError, match="prior_prob"):
        prior_bias(1.0)
    with pytest.raises(ValueError, match="empty_cls"):
        ClassificationHead(C, 6, 3, empty_cls=[3])


def test_trident_head_shapes_and_detach():
    num_bins = 4
    head = TridentHead(C, 6, len(LENGTHS), 3, num_bins)
    feats, masks = _pyramid(LENGTHS, valid=[13, 9])
    feats = [f.requires_grad_() for f in feats]
    bfeats = [f.detach().clone().requires_grad_() for f in feats]
    start, end, offset = head(feats, masks, boundary_feats=bfeats)
    assert [s.shape for s in start] == [(2, 3, n) for n in LENGTHS]
    assert [e.shape for e in end] == [(2, 3, n) for n in LENGTHS]
    assert [o.shape for o in offset] == [(2, n, 2, num_bins + 1) for n in LENGTHS]
    assert all((o >= 0).all() for o in offset)
    for o, m in zip(offset, masks):
        assert o[1, ~m[1, 0]].abs().sum() == 0
    # the centre-offset layout: channel side * K + bin
    o_raw, _ = head.offset.offset(head.offset.tower(feats[0], masks[0]), masks[0])
    o_raw = torch.relu(head.offset.scales[0](o_raw))
    assert torch.equal(offset[0][0, 3, 1, 2], o_raw[0, 1 * (num_bins + 1) + 2, 3])
    sum(x.sum() for x in start + end + offset).backward()
    assert all(b.grad is None for b in bfeats)              # boundary branches are detached
    assert all(f.grad is not None for f in feats)
    with pytest.raises(ValueError, match="boundary_feats"):
        head(feats, masks, boundary_feats=bfeats[:2])


def test_refine_head():
    head = RefineHead(C, 6, 3)
    assert head.start_offset.conv.kernel_size == (7,)
    feats, masks = _pyramid(LENGTHS, valid=[13, 9])
    logits, starts, ends = head(feats, masks)
    for out in (logits, starts, ends):
        assert [o.shape for o in out] == [(2, 3, n) for n in LENGTHS]
        for o, m in zip(out, masks):
            assert (o * ~m).abs().sum() == 0


# --- refinement ------------------------------------------------------------------------------

def test_refined_scores_and_logits():
    a = torch.tensor([0.0, 2.0, -3.0, 30.0])
    r = torch.tensor([0.0, 1.0, 2.0, 30.0])
    assert torch.allclose(refined_scores(a, r, "release"), torch.sigmoid(a * r))
    paper = torch.sqrt(torch.sigmoid(a) * torch.sigmoid(r))
    assert torch.allclose(refined_scores(a, r, "paper"), paper)
    assert torch.allclose(torch.sigmoid(refined_logits(a, r, "paper")), paper, atol=1e-6)
    assert torch.isfinite(refined_logits(a, r, "paper")).all()
    assert torch.equal(refined_logits(a, r, "release"), a * r)
    assert refined_scores(torch.tensor(0.0), torch.tensor(0.0), "paper").item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="variant"):
        refined_scores(a, r, "tridet")


def test_refine_offsets():
    off = torch.tensor([[2.0, 3.0], [0.5, 0.5]])
    out = refine_offsets(off, torch.tensor([2.0, 4.0]), torch.tensor([-2.0, 1.0]), torch.tensor([2.0, 4.0]))
    # row 0: left 2 - 2/2 = 1, right 3 - 2/2 = 2; row 1: left 0.5 - 1 -> 0, right 0.5 + 0.25
    assert out.tolist() == [[1.0, 2.0], [0.0, 0.75]]
    with pytest.raises(ValueError, match="start_offset"):
        refine_offsets(off, torch.zeros(3), torch.zeros(2), 1.0)


# --- head -> decode plumbing (test-only dense decoder; the model calls pytal.ops.trident_decode)


def test_trident_head_output_decodes():
    num_bins = 4
    head = TridentHead(C, 6, len(LENGTHS), 3, num_bins)
    feats, masks = _pyramid(LENGTHS, valid=[13, 9])
    start, end, offset = head(feats, masks)
    for s, e, o in zip(start, end, offset):
        d = trident_decode_dense(s, e, o)
        assert d.shape == (2, s.shape[-1], 3, 2)
        assert (d >= 0).all() and (d <= num_bins + 1e-5).all()
    # a peaked start logit 2 steps to the left decodes to a left distance of about 2
    s = torch.zeros(1, 1, 10)
    s[0, 0, 3] = 50.0
    d = trident_decode_dense(s, torch.zeros(1, 1, 10), torch.zeros(1, 10, 2, num_bins + 1))
    assert d[0, 5, 0, 0].item() == pytest.approx(2.0, abs=1e-4)
    # end logits all 0 (read as 0 past the end too): a uniform distribution, mean num_bins / 2
    assert d[0, 9, 0, 1].item() == pytest.approx(num_bins / 2)

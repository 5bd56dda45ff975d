"""CLTDR-GMG on padded inputs: the parts that skip the padding (pointwise convs through oneDNN,
the projection on the valid prefix, decoder and heads on the valid extent) give the outputs of
the full computation, and ``model.inference_padding`` switches the inference padding."""
from __future__ import annotations

import pytest
import torch

from pytal.config import ConfigError, config_from_dict
from pytal.models import build_model
from pytal.models.cltdr_gmg import CrossLayerFusion, DecoupledClassification, DecoupledRegression
from pytal.models.common.heads import ConvTower
from pytal.nn import GMGBlock, PointwiseConv1d, pointwise_conv1d, valid_extent

from test_cltdr_model import _batch, _meta, _tiny


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # the thread count picks ATen's convolution path
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("groups,bias,batch", [(1, True, 1), (1, False, 3), (2, True, 2)])
def test_pointwise_conv_equals_conv1d_forward_and_backward(groups, bias, batch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 8, 37, generator=g, requires_grad=True)
    conv = torch.nn.Conv1d(8, 6, 1, groups=groups, bias=bias)
    point = PointwiseConv1d(8, 6, groups=groups, bias=bias)
    point.load_state_dict(conv.state_dict())          # same names and shapes
    assert [k for k, _ in point.named_parameters()] == [k for k, _ in conv.named_parameters()]
    ya, yb = conv(x), point(x)
    torch.testing.assert_close(yb, ya)
    grad = torch.randn(ya.shape, generator=g)
    ga = torch.autograd.grad(ya, [x, conv.weight], grad)
    gb = torch.autograd.grad(yb, [x, point.weight], grad)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(b, a)
    with pytest.raises(ValueError, match="weight must have shape"):
        pointwise_conv1d(x, torch.randn(6, 8, 3))


def test_gmg_block_loads_conv1d_mlp_weights():
    block = GMGBlock(32, 3, 2, n_hidden=48, downsample_type="avg")
    assert isinstance(block.mlp[0], PointwiseConv1d) and isinstance(block.downsample[1], PointwiseConv1d)
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items() if "mlp" in k}
    assert shapes == {"mlp.0.weight": (48, 32, 1), "mlp.0.bias": (48,),
                      "mlp.2.weight": (32, 48, 1), "mlp.2.bias": (32,)}


def test_valid_extent():
    mask = torch.zeros(2, 1, 9, dtype=torch.bool)
    assert valid_extent(mask) == 0
    mask[0, 0, :3] = True
    mask[1, 0, 5] = True                               # not a prefix: the last True step counts
    assert valid_extent(mask) == 6
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        valid_extent(mask[:, 0])


@pytest.mark.parametrize("kernel,with_ln,convs", [(3, True, 2), (1, True, 1), (5, False, 3)])
def test_conv_tower_on_the_valid_prefix_equals_the_full_tower(kernel, with_ln, convs):
    torch.manual_seed(0)
    tower = ConvTower(6, 8, convs, kernel, with_ln)
    with torch.no_grad():
        for p in tower.parameters():
            p.add_(0.3 * torch.randn(p.shape))        # non-zero LayerNorm biases and conv biases
    x = torch.randn(2, 6, 40, requires_grad=True)
    mask = torch.zeros(2, 1, 40, dtype=torch.bool)
    mask[0, 0, :13], mask[1, 0, :6] = True, True
    full, short = tower(x, mask), tower.forward_prefix(x, mask, valid_extent(mask))
    torch.testing.assert_close(short, full)
    grad = torch.randn(full.shape)
    for a, b in zip(torch.autograd.grad(full, [x, *tower.parameters()], grad),
                    torch.autograd.grad(short, [x, *tower.parameters()], grad)):
        torch.testing.assert_close(b, a)


def _pyramid(lengths=(40, 20, 10, 5), channels=16, valid=(11, 6, 3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(2, channels, t, generator=g) for t in lengths]
    masks = []
    for t, v in zip(lengths, valid):
        m = torch.zeros(2, 1, t, dtype=torch.bool)
        m[0, 0, :v], m[1, 0, :max(1, v // 2)] = True, True
        masks.append(m)
    return feats, masks


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("module", [DecoupledClassification, DecoupledRegression, CrossLayerFusion])
def test_decoder_modules_return_the_prefix_of_their_full_output(module, masked):
    torch.manual_seed(0)
    layer = module(16, masked=masked)
    feats, masks = _pyramid()
    full = layer(feats, masks)
    lengths = [14, 9, 6, 5]
    short = layer(feats, masks, lengths)
    for a, b, n in zip(full, short, lengths):
        assert b.shape[-1] == n
        torch.testing.assert_close(b, a[..., :n])
    odd, odd_masks = _pyramid((37, 19, 10, 5), valid=(30, 15, 8, 4))
    for a, b, n in zip(layer(odd, odd_masks), layer(odd, odd_masks, [33, 18, 9, 5]), [33, 18, 9, 5]):
        torch.testing.assert_close(b, a[..., :n])
    with pytest.raises(ValueError, match="lengths"):
        layer(feats, masks, [41, 9, 6, 5])


def _perturbed(cfg: dict):
    model = build_model(config_from_dict(cfg))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))   # the zero-initialised branches count
    return model


def _full_heads(model, x, mask):
    """The heads on the whole padded pyramid (every step computed): the oracle."""
    feats, masks = model._prepare(x, mask)
    pyramid, level_masks = model.encoder(feats, masks)
    pyramid = model.neck(pyramid)
    cls = model.cls_head(model.cls_decoupler(pyramid, level_masks), level_masks)
    start, end, offset = model.trident_head(model.reg_decoupler(pyramid, level_masks),
                                            level_masks, boundary_feats=pyramid)
    refine, ds, de = model.refine_head(model.fusion(pyramid, level_masks), level_masks)
    return dict(cls=cls, start=start, end=end, offset=offset, refine=refine, start_offset=ds,
                end_offset=de)


@pytest.mark.parametrize("variant", ["paper", "release"])
def test_heads_on_the_valid_extent_equal_the_full_pyramid(variant):
    cfg = _tiny(variant)
    cfg["dataset"]["max_seq_len"] = 96                # short videos, much padding
    torch.manual_seed(0)
    model = _perturbed(cfg).eval()
    x, mask = _batch((19, 7), junk=2.0)
    with torch.no_grad():
        out, masks, points = model.forward_heads(x, mask)
        full = _full_heads(model, x, mask)
    for level, m in enumerate(masks):
        n = m.shape[-1]
        assert n < full["cls"][level].shape[-1] and points[level].shape[0] == n
        for name, ref in full.items():
            got = getattr(out, name)[level]
            dim = 1 if name == "offset" else -1
            torch.testing.assert_close(got, ref[level].narrow(dim, 0, n), rtol=1e-5, atol=1e-5)
            rest = ref[level].narrow(dim, n, ref[level].shape[dim] - n)
            assert not rest.any()                      # the heads output zeros beyond


def test_inference_padding_switch():
    cfg = _tiny("release")
    cfg["dataset"]["max_seq_len"] = 96
    model = _perturbed(cfg)
    assert model.inference_padding == "max_seq_len" and model.eval().padded_length(19) == 96
    cfg["model"]["inference_padding"] = "stride"
    short = _perturbed(cfg)
    assert short.train().padded_length(19) == 96      # training always pads to max_seq_len
    assert short.eval().padded_length(19) == 24 and short.padded_length(3) == 8
    x, mask = _batch((19,))
    with torch.no_grad():
        a = model.eval().detect(x, mask, _meta((19,)))[0]
        b = short.detect(x, mask, _meta((19,)))[0]
    assert a["scores"].numel() and b["scores"].numel()
    assert not torch.equal(a["scores"], b["scores"])  # the spectral filter sees another length
    cfg["model"]["inference_padding"] = "none"
    with pytest.raises(ConfigError, match="inference_padding"):
        config_from_dict(cfg)

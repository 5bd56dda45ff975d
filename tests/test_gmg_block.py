"""pytal.nn.GMGBlock: the public CLTDR-GMG block's arithmetic, mask handling, state-dict
conversion and errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pytal.nn import GMGBlock


def release_block_forward(sd, x, mask, stride, k, lambd=1e-3):
    """The public SGPBlock forward written out on its own state dict (eval mode, max-pool
    downsampling, path_pdrop > 0): an independent check of GMGBlock(gating="release")."""
    B, C, T = x.shape
    if stride > 1:
        x = F.max_pool1d(x, stride + 1, stride, (stride + 1) // 2)
    out_mask = F.interpolate(mask.to(x.dtype), size=T // stride, mode="nearest")
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    u = (x - mu) / torch.sqrt(var + 1e-5) * sd["ln.weight"] + sd["ln.bias"]
    X = torch.fft.rfft(u, dim=-1, norm="ortho")
    w1, b1, w2, b2 = sd["w1"], sd["b1"], sd["w2"], sd["b2"]
    r1 = torch.relu(X.real * w1[0] - X.imag * w1[1] + b1[0, :, None])
    i1 = torch.relu(X.imag * w1[0] + X.real * w1[1] + b1[1, :, None])
    r2 = r1 * w2[0] - i1 * w2[1] + b2[0, :, None]
    i2 = i1 * w2[0] + r1 * w2[1] + b2[1, :, None]
    W = torch.view_as_complex(F.softshrink(torch.stack([r2, i2], -1), lambd).contiguous())
    g = torch.fft.irfft(W * X, dim=-1, norm="ortho", n=u.shape[-1])
    fc = F.conv1d(u, sd["fc.weight"], sd["fc.bias"], groups=C)
    conv = F.conv1d(u, sd["convw.weight"], sd["convw.bias"], padding=k // 2, groups=C)
    local = conv * g
    mixed = fc * local + local + g + u
    out = x * out_mask + sd["drop_path_out.scale"] * mixed
    h = F.group_norm(out, 16, sd["gn.weight"], sd["gn.bias"])
    h = F.conv1d(F.gelu(F.conv1d(h, sd["mlp.0.weight"], sd["mlp.0.bias"])), sd["mlp.2.weight"],
                 sd["mlp.2.bias"])
    return out + sd["drop_path_mlp.scale"] * h, out_mask.bool()


def release_state_dict(C, k, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return torch.randn(*shape, generator=gen) * s

    return {"ln.weight": 1 + r(1, C, 1, s=0.1), "ln.bias": r(1, C, 1, s=0.1),
            "w1": r(2, C, 1, s=0.5), "b1": r(2, C, s=0.1), "w2": r(2, C, 1, s=0.5),
            "b2": r(2, C, s=0.02), "fc.weight": r(C, 1, 1), "fc.bias": r(C, s=0.1),
            "convw.weight": r(C, 1, k, s=0.5), "convw.bias": r(C, s=0.1),
            "gn.weight": 1 + r(C, s=0.1), "gn.bias": r(C, s=0.1),
            "mlp.0.weight": r(4 * C, C, 1, s=0.1), "mlp.0.bias": r(4 * C, s=0.1),
            "mlp.2.weight": r(C, 4 * C, 1, s=0.1), "mlp.2.bias": r(C, s=0.1),
            "drop_path_out.scale": r(1, C, 1), "drop_path_mlp.scale": r(1, C, 1)}


def make_mask(B, T, lengths):
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None])[:, None, :]


@pytest.mark.parametrize("backend", [None, "reference"])
@pytest.mark.parametrize("stride", [1, 2])
def test_matches_release_block(backend, stride):
    B, C, T, k = 2, 32, 48, 3
    sd = release_state_dict(C, k)
    block = GMGBlock(C, k, n_ds_stride=stride, path_pdrop=0.1, gating="release",
                     backend=backend).eval()
    block.load_state_dict(GMGBlock.convert_release_state_dict(sd))
    x = torch.randn(B, C, T, generator=torch.Generator().manual_seed(3))
    mask = make_mask(B, T, [T, 30])
    x = x * mask
    out, out_mask = block(x, mask)
    expected, expected_mask = release_block_forward(sd, x, mask, stride, k)
    assert out.shape == (B, C, T // stride) and torch.equal(out_mask, expected_mask)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_convert_with_prefix_keeps_other_keys():
    sd = {"enc.0.w1": torch.zeros(2, 4, 1), "enc.0.convw.weight": torch.zeros(4, 1, 3),
          "enc.0.ln.weight": torch.ones(1, 4, 1), "head.x": torch.ones(1)}
    out = GMGBlock.convert_release_state_dict(sd, prefix="enc.0.")
    assert out["enc.0.filter_w1"].shape == (2, 4)
    assert out["enc.0.conv_weight"].shape == (4, 3)
    assert set(out) == {"enc.0.filter_w1", "enc.0.conv_weight", "enc.0.ln.weight", "head.x"}


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_mask_propagation(stride):
    B, C, T = 3, 16, 32
    mask = make_mask(B, T, [32, 17, 5])
    _, out_mask = GMGBlock(C, 3, n_ds_stride=stride)(torch.randn(B, C, T), mask)
    assert out_mask.dtype == torch.bool
    assert torch.equal(out_mask, mask[:, :, ::stride])


def test_masked_residual():
    """With both branches scaled to zero the block is x * mask: padded steps are dropped."""
    B, C, T = 2, 16, 20
    block = GMGBlock(C, 3, path_pdrop=0.1).eval()
    with torch.no_grad():
        block.drop_path_out.scale.zero_()
        block.drop_path_mlp.scale.zero_()
    x = torch.randn(B, C, T)
    mask = make_mask(B, T, [20, 7])
    out, _ = block(x, mask)
    torch.testing.assert_close(out, x * mask)


@pytest.mark.parametrize("gating", ["paper", "release"])
def test_backward_reaches_every_parameter(gating):
    block = GMGBlock(16, 5, n_ds_stride=2, gating=gating)
    out, _ = block(torch.randn(2, 16, 24), make_mask(2, 24, [24, 10]))
    out.square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.extension
def test_extension_and_reference_blocks_agree():
    torch.manual_seed(0)
    block = GMGBlock(16, 3, gating="paper", backend="extension")
    x, mask = torch.randn(2, 16, 40), make_mask(2, 40, [40, 33])
    out_default, _ = block(x, mask)
    block.backend = "reference"
    out_ref, _ = block(x, mask)
    torch.testing.assert_close(out_default, out_ref, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    block = GMGBlock(16, 3, n_ds_stride=2)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, 1, T\)"):
        block(torch.randn(2, 16, 8), torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"T must be divisible by the stride 2"):
        block(torch.randn(2, 16, 9), torch.ones(2, 1, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"kernel_size must be odd"):
        GMGBlock(16, 4)
    with pytest.raises(ValueError, match=r"downsample_type must be 'max' or 'avg'"):
        GMGBlock(16, 3, n_ds_stride=2, downsample_type="conv")

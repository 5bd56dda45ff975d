"""``eval.amp``: inference under autocast. The config value is checked, fp16 on a CPU fails
before any batch is read, and bfloat16 inference of each detector runs the network in
bfloat16 while its detections stay float32 and close to float32 inference's.

Stated tolerance (random weights, 256 steps): the 10 best scores within 10% of the best
score of the float32 run, elementwise after sorting. Measured: below 5% for the three.
"""
from __future__ import annotations

import pytest
import torch

from pytal.config import ConfigError, load_config
from pytal.data.batch import Batch
from pytal.engine import infer_batches
from pytal.models import build_model
from pytal.nn import Float32Conv1d, Float32Conv2d, Float32Linear, MaskedConv1D


def _batch(cfg, steps: int = 256, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    channels = cfg.dataset.input_dim
    feats = torch.randn(1, channels, steps, generator=g)
    meta = [{"video_id": "v0", "fps": 30.0, "duration": steps * 4 / 30.0, "feat_stride": 4,
             "feat_num_frames": 16}]
    return Batch(feats, torch.ones(1, 1, steps, dtype=torch.bool), metadata=meta)


@pytest.mark.parametrize("value", ["fp8", "bfloat16", 16])
def test_bad_eval_amp_names_the_key(value):
    with pytest.raises(ConfigError, match=r"eval\.amp"):
        load_config("cltdr_gmg_small", {"eval.amp": value})


def test_fp16_inference_on_cpu_fails_before_reading_a_batch():
    cfg = load_config("cltdr_gmg_small")
    model = build_model(cfg)

    def batches():
        raise AssertionError("a batch was read")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match=r"eval\.amp='fp16' needs a CUDA device.*none, bf16"):
        infer_batches(model, batches(), amp="fp16")


@pytest.mark.parametrize("name", ["cltdr_gmg_small", "seqattnet_small", "talmts_small"])
def test_bf16_inference_is_close_to_float32(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(name)
        torch.manual_seed(0)
        model = build_model(cfg)
        batch = _batch(cfg)
        dtypes = set()
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
        handles = [c.register_forward_hook(lambda mod, args, out: dtypes.add(out.dtype))
                   for c in convs]
        (full,) = infer_batches(model, [batch])
        assert dtypes == {torch.float32}
        dtypes.clear()
        (half,) = infer_batches(model, [batch], amp="bf16")
        for h in handles:
            h.remove()
    finally:
        torch.set_num_threads(threads)
    assert torch.bfloat16 in dtypes                       # the network did run in bfloat16
    for key in ("segments", "scores"):
        assert half[key].dtype == torch.float32 and bool(half[key].isfinite().all()), key
    assert half["scores"].numel() > 0
    top = min(10, full["scores"].numel(), half["scores"].numel())
    a = full["scores"].sort(descending=True).values[:top]
    b = half["scores"].sort(descending=True).values[:top]
    assert torch.allclose(a, b, rtol=0, atol=0.1 * float(a[0])), (a, b)
    assert not torch.equal(a, b)                          # bfloat16 did round


@pytest.mark.parametrize("name", ["cltdr_gmg_small", "seqattnet_small", "talmts_small"])
def test_scores_under_bf16_are_not_bfloat16_rounded(name):
    """The output layers compute in float32, so close scores do not collapse onto the 8-bit
    mantissa grid of bfloat16."""
    cfg = load_config(name)
    torch.manual_seed(0)
    (det,) = infer_batches(build_model(cfg), [_batch(cfg)], amp="bf16")
    scores = det["scores"]
    assert bool((scores != scores.bfloat16().float()).any())
    assert scores.unique().numel() > 0.9 * scores.numel()


@pytest.mark.parametrize("layer, shape", [
    (lambda: Float32Conv1d(8, 4, 3, padding=1), (2, 8, 10)),
    (lambda: Float32Conv2d(8, 4, 1), (2, 8, 3, 5)),
    (lambda: Float32Linear(8, 4), (2, 5, 8)),
])
def test_float32_layers_compute_in_float32_under_autocast(layer, shape):
    torch.manual_seed(0)
    f32 = layer()
    parent = type(f32).__mro__[2]                         # the torch.nn class it extends
    plain = parent(*_init_args(f32))
    plain.load_state_dict(f32.state_dict())               # same parameter names and shapes
    x = torch.randn(shape)
    assert torch.equal(f32(x), plain(x))                  # no autocast: the parent unchanged
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, low = f32(x.bfloat16()), plain(x.bfloat16())
    assert out.dtype == torch.float32 and low.dtype == torch.bfloat16
    torch.testing.assert_close(out, plain(x.bfloat16().float()))


def _init_args(layer):
    if isinstance(layer, torch.nn.Linear):
        return layer.in_features, layer.out_features
    return layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding


def test_masked_conv_float32_output_under_autocast():
    torch.manual_seed(0)
    conv = MaskedConv1D(8, 4, 3, float32_output=True)
    plain = MaskedConv1D(8, 4, 3)
    plain.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 10)
    mask = torch.ones(2, 1, 10, dtype=torch.bool)
    mask[1, :, 6:] = False
    assert torch.equal(conv(x, mask)[0], plain(x, mask)[0])           # no autocast: the same
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = conv(x.bfloat16(), mask)
        low, _ = plain(x.bfloat16(), mask)
    assert out.dtype == torch.float32 and low.dtype == torch.bfloat16
    expected = torch.nn.functional.conv1d(x.bfloat16().float(), conv.conv.weight, conv.conv.bias,
                                          padding=1) * mask
    torch.testing.assert_close(out, expected)
    assert bool((out[1, :, 6:] == 0).all())

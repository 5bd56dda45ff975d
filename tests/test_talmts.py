"""TAL-MTS: module shapes, RFP, AFSD boundary regions, losses by hand, sliding windows, a tiny
overfit."""
import math

import pytest
import torch

from pytal.config import config_from_dict
from pytal.data import Batch
from pytal.models import build_model
from pytal.models.talmts import (TALMTSConfig, boundary_regions, pack_feature_maps,
                                 unpack_feature_maps, window_starts)
from pytal.models.talmts.backbones import I3dBackbone, Small3dBackbone
from pytal.models.talmts.losses import refined_targets, segment_iou, talmts_losses
from pytal.models.talmts.model import clip_of, level_strides
from pytal.models.talmts.neck import (FrameSelfAttention, Pyramid, SpatialTemporalTransformer,
                                      frame_level_feature, refine_pyramid)

SMALL = dict(name="talmts", backbone="small3d", streams=["rgb"], frame_size=32, clip_length=128,
             test_overlap=64, map_channels=[8, 16], small3d_width=8, channels=32, stt_dim=16,
             stt_heads=2, fsa_patch=8, fsa_dim=16, fsa_heads=2, refine_dim=16)


def make_cfg(**model):
    m = {**SMALL, **model}
    typed = TALMTSConfig(**{**m, "map_channels": tuple(m["map_channels"]),
                            "streams": tuple(m["streams"])})
    steps = m["clip_length"] // typed.frames_per_step
    return config_from_dict({"model": m,
                             "dataset": {"input_dim": typed.input_dim(), "num_classes": 3,
                                         "max_seq_len": steps},
                             "eval": {"tiou_thresholds": [0.5]}})


def meta(i, fs, duration=100.0):
    return {"video_id": f"v{i}", "fps": 10.0, "duration": duration, "feat_stride": fs,
            "feat_num_frames": fs}


# ---------------------------------------------------------------- shapes
def test_small3d_backbone_shapes_match_i3d_maps():
    m4, m5 = Small3dBackbone(3, (8, 16), 4)(torch.zeros(2, 3, 64, 64, 64))
    assert m4.shape == (2, 8, 16, 4, 4) and m5.shape == (2, 16, 8, 2, 2)


def test_i3d_backbone_reads_mixed_4f_and_5c():
    torch.manual_seed(0)
    m4, m5 = I3dBackbone(2, None).eval()(torch.zeros(1, 2, 16, 96, 96))
    assert m4.shape == (1, 832, 4, 6, 6) and m5.shape == (1, 1024, 2, 3, 3)


def test_i3d_needs_weights_or_random():
    with pytest.raises(ValueError, match="i3d_rgb_weights"):
        build_model(make_cfg(backbone="i3d", map_channels=[832, 1024], frame_size=96,
                             fsa_patch=24))


def test_feature_maps_pack_round_trip():
    m4, m5 = torch.randn(8, 6, 2, 2), torch.randn(16, 3, 1, 1)
    rows = pack_feature_maps(m4, m5)
    assert rows.shape == (3, 2 * 8 * 4 + 16)
    a, b = unpack_feature_maps(rows.T[None], (8, 16), (2, 1))
    torch.testing.assert_close(a[0], m4)
    torch.testing.assert_close(b[0], m5)


def test_pyramid_six_levels():
    levels = Pyramid((8, 16), (6, 3), 32)(torch.randn(2, 8, 64, 6, 6), torch.randn(2, 16, 32, 3, 3))
    assert [tuple(x.shape) for x in levels] == [(2, 32, n) for n in (64, 32, 16, 8, 4, 2)]


def test_stt_and_fsa_shapes():
    seqs = SpatialTemporalTransformer(8, 4, 32, 16, 2, 1, 24)(torch.randn(2, 8, 32, 2, 2))
    assert [tuple(x.shape) for x in seqs] == [(2, 24, n) for n in (32, 16, 8, 4, 2, 1)]
    f = FrameSelfAttention(3, 32, 8, 16, 2, 1)(torch.randn(2, 3, 10, 32, 32))
    assert f.shape == (2, 16, 10)


@pytest.mark.parametrize("model", [{}, {"streams": ["rgb", "flow"], "stt": False},
                                   {"backbone": "features", "fsa": False}])
def test_stream_outputs_shapes(model):
    cfg = make_cfg(**model)
    net = build_model(cfg)
    k = sum(128 // s for s in level_strides())
    feats = torch.rand(2, cfg.dataset.input_dim, net.clip_steps) * 255
    for name, inputs in net._stream_inputs(feats).items():
        out = net.streams[name](inputs)
        assert out["cls"].shape == (2, k, 3) and out["refined_cls"].shape == (2, k, 3)
        assert out["distances"].shape == (2, k, 2) and out["offsets"].shape == (2, k, 2)
        assert out["quality"].shape == (2, k)
        assert (out["distances"] >= 0).all()


def test_frames_layout_of_feats():
    cfg = make_cfg(streams=["rgb", "flow"])
    net = build_model(cfg)
    video = torch.randint(0, 256, (128, 32, 32, 5)).float()        # (T, H, W, rgb + flow)
    feats = video.permute(3, 1, 2, 0).reshape(1, -1, 128)
    inputs = net._stream_inputs(feats)
    torch.testing.assert_close(inputs["rgb"][0, :, 7], video[7, ..., :3].permute(2, 0, 1) / 127.5 - 1)
    torch.testing.assert_close(inputs["flow"][0, 1, 9], video[9, ..., 4] / 127.5 - 1)


# ---------------------------------------------------------------- RFP
def test_rfp_is_parameter_free_nearest_top_down():
    levels = [torch.arange(n, dtype=torch.float64).view(1, 1, n) * 10 ** i
              for i, n in enumerate((8, 4, 2))]
    out = refine_pyramid(levels)
    torch.testing.assert_close(out[2], levels[2])
    top = levels[2].repeat_interleave(2, -1)
    torch.testing.assert_close(out[1], levels[1] + top)
    torch.testing.assert_close(out[0], levels[0] + (levels[1] + top).repeat_interleave(2, -1))
    net = build_model(make_cfg())
    names = [n for n, _ in net.named_parameters()]
    assert not any("rfp" in n or "refine_pyramid" in n for n in names)


def test_frame_level_feature_is_linear_interpolation():
    low = torch.tensor([[[0.0, 4.0]]])
    torch.testing.assert_close(frame_level_feature(low, 4), torch.tensor([[[0.0, 1.0, 3.0, 4.0]]]))


# ---------------------------------------------------------------- boundary regions
def test_boundary_regions_hand_computed():
    segments = torch.tensor([[10.0, 30.0], [3.0, 5.0], [10.4, 50.6], [-3.0, 2.0]])
    # len 20: out 2, in 5; len 2: out 1, in 1; len 40.2: out 4.02, in 10.05; len 5: 1, 1.25
    expected = torch.tensor([[8.0, 15.0, 25.0, 32.0], [2.0, 4.0, 4.0, 6.0],
                             [6.0, 20.0, 41.0, 55.0], [-4.0, -2.0, 1.0, 3.0]])
    torch.testing.assert_close(boundary_regions(segments), expected)
    # frame level: AFSD counts e - s + 1 frames: len 21 -> out 2.1, in 5.25
    torch.testing.assert_close(boundary_regions(torch.tensor([10.0, 30.0]), inclusive=True),
                               torch.tensor([8.0, 15.0, 25.0, 32.0]))
    torch.testing.assert_close(boundary_regions(torch.tensor([0.0, 39.0]), inclusive=True),
                               torch.tensor([-4.0, 10.0, 29.0, 43.0]))


# ---------------------------------------------------------------- losses
def test_segment_iou_and_refined_targets():
    torch.testing.assert_close(segment_iou(torch.tensor([0.0, 10.0]), torch.tensor([5.0, 20.0])),
                               torch.tensor(0.25))
    # coarse [10, 20] (d = 10) -> gt [12, 19]: deltas 2 * 2 / 10, 2 * -1 / 10
    torch.testing.assert_close(refined_targets(torch.tensor([[10.0, 20.0]]),
                                               torch.tensor([[12.0, 19.0]])),
                               torch.tensor([[0.4, -0.2]]))


def _focal(x, y, a=0.25, g=2.0):
    p = 1 / (1 + math.exp(-x))
    pt = p if y else 1 - p
    return (a if y else 1 - a) * (1 - pt) ** g * -math.log(pt)


def test_losses_hand_computed():
    # two positions (frames 2 and 6, stride 4), one class; position 0 inside gt [0, 8].
    positions, strides = torch.tensor([2.0, 6.0]), torch.tensor([4.0, 4.0])
    cls_t = torch.tensor([[[1.0], [0.0]]])
    reg_t = torch.tensor([[[0.5, 1.5], [0.0, 0.0]]])            # strides: [2 - 2, 2 + 6]
    dist = torch.tensor([[[1.0, 5.0], [3.0, 3.0]]])            # coarse [1, 7]: IoU 6/8
    logits = torch.tensor([[[0.5], [-1.0]]])
    refined = torch.tensor([[[1.5], [0.2]]])
    offsets = torch.tensor([[[-0.2, 0.5], [0.0, 0.0]]])
    quality = torch.tensor([[0.3, 0.0]])
    out = talmts_losses(cls_logits=logits, distances=dist, positions=positions, strides=strides,
                        valid=torch.tensor([[True, True]]), cls_targets=cls_t, reg_targets=reg_t,
                        refined_offsets=offsets, refined_logits=refined, quality=quality,
                        alpha=10.0, beta=1.0, refine_iou=0.5)
    cls_c = _focal(0.5, 1) + _focal(-1.0, 0)
    cls_r = _focal(1.5, 1) + _focal(0.2, 0)
    loc_c = 1 - 6 / 8                                        # GIoU = IoU (enclosing = union)
    # targets: 2 * (0 - 1) / 6 = -1/3, 2 * (8 - 7) / 6 = 1/3; smooth L1 (beta 1): 0.5 x^2
    loc_r = 0.5 * (-0.2 + 1 / 3) ** 2 + 0.5 * (0.5 - 1 / 3) ** 2
    # refined [1 - 0.6, 7 + 1.5] = [0.4, 8.5]: IoU 7.6 / 8.5
    q = 7.6 / 8.5
    p = 1 / (1 + math.exp(-0.3))
    bce = -(q * math.log(p) + (1 - q) * math.log(1 - p))
    expected = {"cls_coarse": cls_c, "cls_refined": cls_r, "loc_coarse": loc_c,
                "loc_refined": loc_r, "quality": bce,
                "loss": cls_c + cls_r + 10 * (loc_c + loc_r) + bce}
    for key, value in expected.items():
        assert float(out[key]) == pytest.approx(value, rel=1e-5), key


def test_refined_classification_needs_tiou_above_threshold():
    args = dict(positions=torch.tensor([2.0]), strides=torch.tensor([4.0]),
                valid=torch.tensor([[True]]), cls_targets=torch.tensor([[[1.0]]]),
                reg_targets=torch.tensor([[[0.5, 1.5]]]), refined_offsets=torch.zeros(1, 1, 2),
                refined_logits=torch.tensor([[[0.7]]]), quality=torch.full((1, 1), 0.4), alpha=1.0,
                beta=1.0, refine_iou=0.5, cls_logits=torch.zeros(1, 1, 1))
    poor = talmts_losses(distances=torch.tensor([[[0.5, 0.5]]]), **args)   # IoU 1/8
    assert float(poor["cls_refined"]) == pytest.approx(_focal(0.7, 0), rel=1e-5)
    # the quality still learns the (poor) IoU of every coarse positive, as AFSD's BCE does
    p, q = 1 / (1 + math.exp(-0.4)), 1 / 8
    assert float(poor["quality"]) == pytest.approx(-(q * math.log(p) + (1 - q) * math.log(1 - p)),
                                                   rel=1e-5)


# ---------------------------------------------------------------- sliding windows
def test_window_starts_cover_the_video():
    assert window_starts(100, 128, 64) == [0]
    assert window_starts(128, 128, 64) == [0]
    assert window_starts(129, 128, 64) == [0, 64]
    assert window_starts(300, 128, 64) == [0, 64, 128, 192]
    torch.testing.assert_close(clip_of(torch.arange(5.0)[None], 3, 4), torch.tensor([[3.0, 4.0, 0.0, 0.0]]))


def test_sliding_windows_merged_per_video(monkeypatch):
    cfg = make_cfg()
    cfg = config_from_dict({**_raw(cfg), "eval": {"tiou_thresholds": [0.5], "nms_method": "none"}})
    net = build_model(cfg).eval()
    seen = []

    def fake(feats, masks):
        # one detection per clip: steps [10, 20] of the clip, score = the clip's first value
        n = feats.shape[0]
        seen.append(masks[:, 0].sum(-1).tolist())
        return (torch.arange(n), torch.tensor([[10.0, 20.0]]).repeat(n, 1),
                feats[:, 0, 0].clone(), torch.zeros(n, dtype=torch.long))

    monkeypatch.setattr(net, "clip_detections", fake)
    lengths = (300, 100)
    feats = torch.zeros(2, cfg.dataset.input_dim, 300)
    feats[0, 0, :] = torch.arange(300.0)
    masks = torch.zeros(2, 1, 300, dtype=torch.bool)
    for i, n in enumerate(lengths):
        masks[i, :, :n] = True
    out = net.predict(Batch(feats, masks, metadata=[meta(0, 1), meta(1, 1)]))
    assert sorted(seen[0]) == sorted([128, 128, 128, 108, 100])
    starts = sorted(out[0]["scores"].tolist())
    assert starts == [0.0, 64.0, 128.0, 192.0]          # the windows' first steps
    got = sorted(out[0]["segments"][:, 0].tolist())
    assert got == pytest.approx([(s + 10 + 0.5) / 10 for s in (0, 64, 128, 192)])
    assert out[1]["segments"].shape == (1, 2)
    assert out[1]["segments"][0].tolist() == pytest.approx([1.05, 2.05])


def _raw(cfg):
    from dataclasses import asdict
    return {"model": asdict(cfg.model), "dataset": asdict(cfg.dataset)}


# ---------------------------------------------------------------- training
def _synthetic_clip(fs, input_dim, steps, gen):
    """One clip whose action steps carry a strong constant pattern."""
    feats = torch.rand(1, input_dim, steps, generator=gen) * 60
    start, end = steps // 4, steps // 2
    feats[0, :, start:end] += 150
    return feats, torch.tensor([[float(start), float(end)]])


@pytest.fixture
def one_thread():
    """Small convs on a loaded 2-core machine run far faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_overfit_refined_and_coarse(one_thread):
    torch.manual_seed(0)
    cfg = make_cfg(backbone="features", fsa=False, stt=False, map_channels=[4, 4], channels=32,
                   refine_dim=16, alpha=1.0)
    net = build_model(cfg)
    gen = torch.Generator().manual_seed(0)
    feats, seg = _synthetic_clip(8, cfg.dataset.input_dim, net.clip_steps, gen)
    batch = Batch(feats / 255, torch.ones(1, 1, net.clip_steps, dtype=torch.bool), [seg],
                  [torch.tensor([1])], [meta(0, 8)])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(120):
        loss = net(batch)["loss"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 * first
    net.eval()
    for detections in ("refined", "coarse"):
        object.__setattr__(net.m, "detections", detections)
        top = net.predict(batch)[0]
        assert int(top["labels"][0]) == 1
        truth = torch.tensor([(seg[0, 0] * 8 + 4) / 10, (seg[0, 1] * 8 + 4) / 10])
        assert float(segment_iou(top["segments"][0], truth)) > 0.7, detections

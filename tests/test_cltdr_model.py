"""The assembled CLTDR-GMG detector (pytal.models.CLTDRGMG): shapes, padding, configs, release
checkpoints, a one-batch overfit through ``forward`` and ``detect``, extension use, bad configs."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

import pytal
from pytal.config import ConfigError, config_from_dict
from pytal.data import Batch
from pytal.models import CLTDRGMG, build_model, registered_models
from pytal.models.cltdr_gmg import convert_release_checkpoint, extract_release_state_dict

CONFIG_DIR = Path(__file__).resolve().parents[1] / "pytal" / "configs"
C_IN, NC = 24, 3
META = dict(fps=25.0, feat_stride=4, feat_num_frames=16)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)       # many tiny ops: threads only add overhead
    yield
    torch.set_num_threads(threads)


def _load(name: str) -> dict:
    with open(CONFIG_DIR / f"{name}.yaml") as f:
        return yaml.safe_load(f)


def _tiny(variant: str = "paper", **model) -> dict:
    """cltdr_gmg_small shrunk: 4 levels (total stride 8), 32 channels, T padded to 32."""
    cfg = _load("cltdr_gmg_small")
    cfg["model"].update(variant=variant, backbone_arch=[2, 1, 3], embd_dim=32, fpn_dim=32,
                        head_dim=16, gmg_mlp_dim=32, gmg_kernel_size=3, gmg_init_conv_vars=0.1,
                        num_bins=4, input_noise=0.0, head_num_layers=3,
                        regression_range=[[0, 4], [4, 8], [8, 16], [16, 10000]], **model)
    cfg["dataset"].update(input_dim=C_IN, num_classes=NC, max_seq_len=32)
    cfg["model"].update(droppath=0.0)
    cfg["eval"].update(max_seg_num=50)
    return cfg


def _build(cfg: dict) -> CLTDRGMG:
    """The detector of a raw config dict (typed and checked by pytal.config)."""
    return build_model(config_from_dict(cfg))


def _batch(lengths, t=None, junk=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = t or max(lengths)
    x = junk * torch.randn(len(lengths), C_IN, t, generator=g)
    mask = torch.zeros(len(lengths), 1, t, dtype=torch.bool)
    for i, n in enumerate(lengths):
        x[i, :, :n] = torch.randn(C_IN, n, generator=torch.Generator().manual_seed(seed + 1 + i))
        mask[i, :, :n] = True
    return x, mask


def _meta(lengths):
    return [dict(META, video_id=f"v{i}", duration=(n * 4 + 8) / 25.0) for i, n in enumerate(lengths)]


@pytest.mark.parametrize("variant", ["paper", "release"])
def test_shapes_odd_lengths_and_masks(variant):
    torch.manual_seed(0)
    model = _build(_tiny(variant))
    lengths = (37, 21)                     # longer than max_seq_len 32, odd, and a padded video
    x, mask = _batch(lengths)
    out, masks, points = model.forward_heads(x, mask)
    t0 = model.padded_length(37)
    assert t0 == 40 and [m.shape[-1] for m in masks] == [40, 20, 10, 5]
    for level, n in enumerate((40, 20, 10, 5)):
        assert out.cls[level].shape == out.refine[level].shape == (2, NC, n)
        assert out.start[level].shape == out.end[level].shape == out.start_offset[level].shape
        assert out.offset[level].shape == (2, n, 2, 5)
        assert points[level].shape == (n, 4)
    assert masks[0][0, 0].sum() == 37 and masks[0][1, 0].sum() == 21
    assert masks[1][1, 0].sum() == 11   # nearest downsampling of the mask

    segs = [torch.tensor([[2.0, 9.0], [12.0, 33.5]]), torch.tensor([[4.0, 15.0]])]
    labels = [torch.tensor([0, 2]), torch.tensor([[0, 1, 1]])]       # int ids and multi-label rows
    losses = model.losses(x, mask, segs, labels)
    assert {"loss", "cls_loss", "reg_loss", "refined_loss", "coarse_loss"} <= set(losses)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert model.encoder.embed.convs[0].conv.weight.grad is not None

    model.eval()
    dets = model.detect(x, mask, _meta(lengths))
    assert [d["video_id"] for d in dets] == ["v0", "v1"]
    for d, n in zip(dets, lengths):
        m = d["scores"].shape[0]
        assert 0 < m <= 50 and d["segments"].shape == (m, 2) and d["labels"].dtype == torch.int64
        assert (d["segments"] >= 0).all() and (d["segments"] <= (n * 4 + 8) / 25.0).all()
        assert (d["scores"][:-1] >= d["scores"][1:]).all()


def test_padding_invariance_paper_variant():
    """A video's outputs do not depend on how far it is padded, on what the padding holds or
    on the other videos of the batch (paper variant: masked decoder)."""
    torch.manual_seed(0)
    model = _build(_tiny("paper")).eval()
    alone_x, alone_m = _batch((19,))
    batch_x, batch_m = _batch((19, 30), t=31, junk=3.0)
    batch_x[0, :, :19] = alone_x[0]
    with torch.no_grad():
        a, am, _ = model.forward_heads(alone_x, alone_m)
        b, bm, _ = model.forward_heads(batch_x, batch_m)
    for level in range(4):
        valid = am[level][0, 0]          # the batch keeps more steps: compare the alone's
        n = valid.numel()
        for name in ("cls", "start", "end", "refine", "start_offset", "end_offset"):
            ya, yb = getattr(a, name)[level][0][:, valid], getattr(b, name)[level][0][:, :n][:, valid]
            torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.offset[level][0][valid], b.offset[level][0][:n][valid],
                                   rtol=1e-5, atol=1e-5)
    da = model.detect(alone_x, alone_m, _meta((19,)))[0]
    db = model.detect(batch_x, batch_m, _meta((19, 30)))[0]
    torch.testing.assert_close(da["scores"], db["scores"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(da["segments"], db["segments"], rtol=1e-5, atol=1e-5)
    assert torch.equal(da["labels"], db["labels"])


def test_empty_ground_truth_nan_padding_and_no_candidates():
    model = _build(_tiny("release"))
    x, mask = _batch((20, 13))
    x[1, :, 13:] = float("nan")            # whatever the caller pads with is ignored
    losses = model.losses(x, mask, [torch.zeros(0, 2), torch.zeros(0, 2)],
                   [torch.zeros(0, dtype=torch.long)] * 2)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["reg_loss"] == 0
    losses["loss"].backward()
    model.protocol = dataclasses.replace(model.protocol, pre_nms_thresh=1.0)   # nothing passes
    model.eval()
    dets = model.detect(x, mask, _meta((20, 13)))
    assert [d["segments"].shape for d in dets] == [(0, 2), (0, 2)]


@pytest.mark.parametrize("name", ["cltdr_gmg_thumos", "cltdr_gmg_anet", "cltdr_gmg_small"])
def test_build_model_from_packaged_configs(name):
    cfg = _load(name)
    levels = cfg["model"]["backbone_arch"][2] + 1
    cfg["model"].update(embd_dim=16, fpn_dim=16, head_dim=8, gmg_mlp_dim=16)
    cfg["dataset"]["max_seq_len"] = 2 ** levels
    torch.manual_seed(0)
    model = _build(cfg)
    assert isinstance(model, CLTDRGMG) and model.variant == cfg["model"]["variant"]
    assert len(model.neck.norms) == levels
    assert model.encoder.use_abs_pe == cfg["model"]["use_abs_pe"]
    t = 2 ** (levels - 1) + 3
    x = torch.randn(1, cfg["dataset"]["input_dim"], t)
    mask = torch.ones(1, 1, t, dtype=torch.bool)
    losses = model.losses(x, mask, [torch.tensor([[1.0, 4.0]])], [torch.tensor([0])])
    assert torch.isfinite(losses["loss"])
    model.eval()
    t = 2 ** levels + 5                   # longer than max_seq_len: position embedding resampled
    x = torch.randn(1, cfg["dataset"]["input_dim"], t)
    det = model.detect(x, torch.ones(1, 1, t, dtype=torch.bool), [dict(META, video_id="a", duration=10.0)])[0]
    assert det["segments"].shape[1] == 2


def test_overfit_one_batch_and_detect_in_seconds():
    torch.manual_seed(0)
    cfg = _tiny("paper")
    cfg["model"].update(init_loss_norm=4)
    model = _build(cfg)
    lengths = (32, 27)
    x, mask = _batch(lengths)
    segs = [torch.tensor([[3.0, 9.0], [14.0, 30.0]]), torch.tensor([[2.0, 4.5], [10.0, 22.0]])]
    labels = [torch.tensor([0, 1]), torch.tensor([2, 0])]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(80):
        loss = model.losses(x, mask, segs, labels)["loss"]
        first = loss.item() if step == 0 else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first and loss.item() < 0.3, (first, loss.item())

    model.eval()
    dets = model.detect(x, mask, _meta(lengths))
    for det, gt_segs, gt_labels in zip(dets, segs, labels):
        gt_seconds = (gt_segs * 4 + 8) / 25.0           # feature steps -> seconds
        for seg, lab in zip(gt_seconds, gt_labels):
            sel = det["labels"] == lab
            best = det["segments"][sel][0]              # highest-scoring detection of the class
            inter = (torch.minimum(best[1], seg[1]) - torch.maximum(best[0], seg[0])).clamp(min=0)
            iou = inter / (torch.maximum(best[1], seg[1]) - torch.minimum(best[0], seg[0]))
            assert iou > 0.7, (seg.tolist(), best.tolist(), iou.item())


def _release_block(prefix, e, hidden, k, droppath):
    shapes = {f"{prefix}.ln.weight": (1, e, 1), f"{prefix}.ln.bias": (1, e, 1),
              f"{prefix}.gn.weight": (e,), f"{prefix}.gn.bias": (e,),
              f"{prefix}.fc.weight": (e, 1, 1), f"{prefix}.fc.bias": (e,),
              f"{prefix}.convw.weight": (e, 1, k), f"{prefix}.convw.bias": (e,),
              f"{prefix}.w1": (2, e, 1), f"{prefix}.b1": (2, e), f"{prefix}.w2": (2, e, 1),
              f"{prefix}.b2": (2, e), f"{prefix}.mlp.0.weight": (hidden, e, 1),
              f"{prefix}.mlp.0.bias": (hidden,), f"{prefix}.mlp.2.weight": (e, hidden, 1),
              f"{prefix}.mlp.2.bias": (e,)}
    if droppath:
        shapes[f"{prefix}.drop_path_out.scale"] = shapes[f"{prefix}.drop_path_mlp.scale"] = (1, e, 1)
    return shapes


def _release_tower(prefix, c_in, h, layers=2):
    shapes = {}
    for i in range(layers):
        shapes[f"{prefix}.head.{i}.conv.weight"] = (h, c_in if i == 0 else h, 3)
        shapes[f"{prefix}.norm.{i}.weight"] = shapes[f"{prefix}.norm.{i}.bias"] = (1, h, 1)
    return shapes


def _release_state_dict_shapes(e=32, h=16, hidden=32, k=3, bins=4, levels=4, arch=(2, 1, 3)):
    """Parameter names and shapes of the public code's TriDet/CLTDR-GMG model (SGP backbone,
    identity neck, Trident head, DeCLS/DeReg/CrossLevel, RefineHead) for ``_tiny``'s sizes."""
    shapes = {}
    for i in range(arch[0]):
        shapes[f"backbone.embd.{i}.conv.weight"] = (e, C_IN if i == 0 else e, 3)
        shapes[f"backbone.embd_norm.{i}.weight"] = shapes[f"backbone.embd_norm.{i}.bias"] = (1, e, 1)
    for i in range(arch[1]):
        shapes.update(_release_block(f"backbone.stem.{i}", e, hidden, 1, False))
    for i in range(arch[2]):
        shapes.update(_release_block(f"backbone.branch.{i}", e, hidden, k, True))
    for level in range(levels):
        shapes[f"neck.fpn_norms.{level}.weight"] = shapes[f"neck.fpn_norms.{level}.bias"] = (1, e, 1)
    for name in ("decls.contrans", "dereg.down", "cross_level.conv", "cross_level.convtrans"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (e, e, 3), (e,)
    for name in ("decls.conv_l", "decls.attn.1", "dereg.conv_l", "dereg.attn.1"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (e, e, 1), (e,)
    for name in ("cls_head", "start_head", "end_head"):
        shapes.update(_release_tower(name, e, h))
        shapes[f"{name}.cls_head.conv.weight"], shapes[f"{name}.cls_head.conv.bias"] = (NC, h, 3), (NC,)
    shapes.update(_release_tower("reg_head", e, h))
    shapes["reg_head.offset_head.conv.weight"] = (2 * (bins + 1), h, 3)
    shapes["reg_head.offset_head.conv.bias"] = (2 * (bins + 1),)
    shapes.update(_release_tower("refineHead", e, h))
    for level in range(levels):
        shapes[f"reg_head.scale.{level}.scale"] = shapes[f"refineHead.scale.{level}.scale"] = ()
    for name, kk in (("prob_head", 3), ("s_offset_head", 7), ("e_offset_head", 7)):
        shapes[f"refineHead.{name}.conv.weight"], shapes[f"refineHead.{name}.conv.bias"] = (NC, h, kk), (NC,)
    return shapes


def test_release_checkpoint_loads_strictly_ema_and_raw():
    cfg = _tiny("release")
    cfg["model"]["droppath"] = 0.1
    shapes = _release_state_dict_shapes()
    g = torch.Generator().manual_seed(0)
    checkpoint = {key: {f"module.{n}": torch.randn(s, generator=g) for n, s in shapes.items()}
                  for key in ("state_dict", "state_dict_ema")}
    for weights, key in (("ema", "state_dict_ema"), ("raw", "state_dict")):
        model = _build(cfg)
        state = convert_release_checkpoint(extract_release_state_dict(checkpoint, weights))
        model.load_state_dict(state, strict=True)
        src = checkpoint[key]
        assert torch.equal(model.encoder.branch[1].filter_w1, src["module.backbone.branch.1.w1"][..., 0])
        assert torch.equal(model.encoder.stem[0].conv_weight, src["module.backbone.stem.0.convw.weight"][:, 0])
        assert torch.equal(model.neck.norms[2].weight, src["module.neck.fpn_norms.2.weight"])
        assert torch.equal(model.refine_head.start_offset.conv.weight,
                           src["module.refineHead.s_offset_head.conv.weight"])
        model.eval()
        x, mask = _batch((29,))
        det = model.detect(x, mask, _meta((29,)))[0]
        assert torch.isfinite(det["scores"]).all()


@pytest.mark.extension
def test_model_calls_the_extension_ops(monkeypatch):
    calls = {"gmg": 0, "trident_decode": 0, "trident_decode_index": 0}
    for name in calls:
        op = getattr(torch.ops.pytal, name)

        def spy(*args, _op=op, _name=name):
            calls[_name] += 1
            return _op(*args)
        monkeypatch.setattr(torch.ops.pytal, name, spy)
    torch.manual_seed(0)
    model = _build(_tiny("paper"))
    x, mask = _batch((30, 17))
    model.losses(x, mask, [torch.tensor([[2.0, 9.0]]), torch.tensor([[1.0, 12.0]])],
          [torch.tensor([0]), torch.tensor([1])])["loss"].backward()
    assert calls["gmg"] == 4                                           # 1 stem + 3 branch blocks
    trained = calls["trident_decode_index"]  # the loss decodes the positive points only
    assert trained > 0
    model.eval()
    model.detect(x, mask, _meta((30, 17)))
    assert calls["gmg"] == 8 and calls["trident_decode_index"] > trained


def _expect(match, cfg):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(cfg)


def test_bad_config_values_name_the_key():
    base = _tiny()

    def changed(section, **values):
        cfg = copy.deepcopy(base)
        cfg[section].update(values)
        return cfg

    _expect(r"model\.variant", changed("model", variant="paperish"))
    _expect(r"model\.backbone_arch", changed("model", backbone_arch=[2, 1]))
    _expect(r"model\.regression_range", changed("model", regression_range=[[0, 4]]))
    _expect(r"model\.embd_dim", changed("model", embd_dim=40, fpn_dim=40))
    _expect(r"model\.fpn_dim", changed("model", fpn_dim=64))
    _expect(r"model\.gmg_kernel_size", changed("model", gmg_kernel_size=4))
    _expect(r"model\.cls_loss", changed("model", cls_loss="bce"))
    _expect(r"dataset\.max_seq_len", changed("dataset", max_seq_len=30))
    _expect(r"dataset\.num_classes", changed("dataset", num_classes=0))
    _expect(r"model\.head_empty_cls", changed("model", head_empty_cls=[7]))
    _expect(r"eval\.nms_method", changed("eval", nms_method="greedy"))
    _expect(r"eval\.pre_nms_topk", changed("eval", pre_nms_topk=0.5))
    missing = copy.deepcopy(base)
    del missing["dataset"]["input_dim"]
    _expect(r"missing key dataset\.input_dim", missing)
    _expect(r"model\.name must be one of \['cltdr_gmg'", changed("model", name="nope"))
    with pytest.raises(TypeError, match="expected a pytal.config.Config"):
        build_model(base)                                    # a raw dict is not a config
    assert "cltdr_gmg" in registered_models() and pytal.models.CLTDRGMG is CLTDRGMG


def test_protocol_forward_and_predict_of_a_batch():
    """``model(batch)`` and ``model.predict(batch)`` are the tensor-level methods on a Batch."""
    torch.manual_seed(0)
    model = _build(_tiny("paper"))
    x, mask = _batch((30, 17))
    segs, labels = [torch.tensor([[2.0, 9.0]]), torch.tensor([[1.0, 12.0]])], \
        [torch.tensor([0]), torch.tensor([1])]
    batch = Batch(x, mask, segs, labels, _meta((30, 17)))
    state = model.loss_normalizer.state_dict()
    torch.manual_seed(1)
    via_batch = model(batch)
    model.loss_normalizer.load_state_dict(state)
    torch.manual_seed(1)
    direct = model.losses(x, mask, segs, labels)
    assert via_batch.keys() == direct.keys() and "loss" in via_batch
    for key in direct:
        assert torch.equal(via_batch[key], direct[key]), key
    model.eval()
    got, want = model.predict(batch), model.detect(x, mask, _meta((30, 17)))
    assert [d["video_id"] for d in got] == ["v0", "v1"]
    for a, b in zip(got, want):
        assert torch.equal(a["segments"], b["segments"]) and torch.equal(a["scores"], b["scores"])
    with pytest.raises(ValueError, match="needs segments and labels"):
        model(Batch(x, mask, metadata=_meta((30, 17))))


def test_bad_inputs_give_clear_errors():
    model = _build(_tiny())
    x, mask = _batch((20,))
    with pytest.raises(ValueError, match="feats must be a"):
        model.losses(x[:, :5], mask, [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    with pytest.raises(ValueError, match="masks must be a"):
        model.losses(x, mask.float(), [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        model.losses(x, mask, [torch.zeros(1, 2)], [torch.zeros(2, dtype=torch.long)])
    with pytest.raises(ValueError, match=r"CLTDRGMG: labels\[0\] must be in \[0, 3\)"):
        model.losses(x, mask, [torch.tensor([[2.0, 9.0]])], [torch.tensor([NC])])
    with pytest.raises(KeyError, match="fps"):
        model.detect(x, mask, [{"video_id": "a", "duration": 1.0, "feat_stride": 4,
                                "feat_num_frames": 16}])

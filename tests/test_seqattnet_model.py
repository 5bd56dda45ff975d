"""The assembled SeqAttNet: config, parameter count, losses, detect, a tiny overfit."""
import pytest
import torch

from pytal.config import ConfigError, config_from_dict, load_config
from pytal.data.batch import Batch
from pytal.models import SeqAttNet, build_model


@pytest.fixture(autouse=True)
def one_thread():
    """Many small ops: on 2 shared cores, more threads only add overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_raw(**model):
    return {"model": {"name": "seqattnet", "base_dim": 16, "num_samples": 4, "hidden_3d": 16,
                      "hidden_2d": 8, "error_proposals": 8, **model},
            "dataset": {"name": "activitynet_tiny", "input_dim": 8, "num_classes": 3,
                        "max_seq_len": 20}}


def tiny_cfg(**model):
    return config_from_dict(tiny_raw(**model))


def _meta(b, duration=40.0, t=20):
    # the grid of a video of `duration` s resized to t steps at 30 fps
    stride = duration * 30.0 / t
    return [{"video_id": f"v{i}", "fps": 30.0, "duration": duration, "feat_stride": stride,
             "feat_num_frames": stride} for i in range(b)]


def test_packaged_configs_and_parameter_count():
    anet = build_model(load_config("seqattnet_anet"))
    count = sum(p.numel() for p in anet.parameters())
    assert 4.5e6 < count < 6.5e6                 # the paper: about 5M
    small = build_model(load_config("seqattnet_small"))
    assert sum(p.numel() for p in small.parameters()) < count / 10
    assert isinstance(small, SeqAttNet)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.num_sample"):
        load_config("seqattnet_small", ["model.num_sample=3"])
    with pytest.raises(ConfigError, match="model.amassment_length"):
        load_config("seqattnet_small", ["model.amassment_length=50"])
    with pytest.raises(ConfigError, match="model.amassment_features"):
        load_config("seqattnet_small", ["model.amassment_features=other"])
    with pytest.raises(ConfigError, match="model.lambda_reg"):
        load_config("seqattnet_small", ["model.lambda_reg=-1"])
    with pytest.raises(ConfigError, match="model.max_duration"):
        load_config("seqattnet_small", ["model.max_duration=101"])


def _batch(b=2, t=20, c=8):
    torch.manual_seed(0)
    feats = torch.randn(b, c, t)
    masks = torch.ones(b, 1, t, dtype=torch.bool)
    segments = [torch.tensor([[2.0, 9.0], [12.0, 17.5]]), torch.tensor([[4.0, 15.0]])][:b]
    labels = [torch.tensor([0, 2]), torch.tensor([1])][:b]
    return feats, masks, segments, labels


@pytest.mark.parametrize("source", ["input", "base"])
def test_losses_are_finite_and_reach_every_parameter(source):
    model = build_model(tiny_cfg(amassment_features=source)).train()
    feats, masks, segments, labels = _batch()
    losses = model(Batch(feats, masks, segments, labels))
    assert set(losses) == {"loss", "pe_loss", "te_loss", "cls_loss", "err_loss", "l2_loss"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    c = model.config
    total = (losses["pe_loss"] + c.lambda_te * losses["te_loss"] + c.lambda_cl * losses["cls_loss"]
             + c.lambda_er * losses["err_loss"] + c.lambda_l2 * losses["l2_loss"])
    torch.testing.assert_close(losses["loss"], total)
    assert losses["err_loss"] > 0
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_training_input_errors():
    model = build_model(tiny_cfg()).train()
    feats, masks, segments, labels = _batch()
    with pytest.raises(ValueError, match="T = 20"):
        model(Batch(feats[:, :, :18], masks[:, :, :18], segments, labels))
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        model(Batch(feats, masks, segments, [labels[0], torch.tensor([3])]))
    with pytest.raises(ValueError, match=r"\(B, 8, T\)"):
        model(Batch(feats[:, :5], masks, segments, labels))
    with pytest.raises(ValueError, match="segments"):
        model(Batch(feats, masks))
    # a video without ground truth trains the evaluation branches only
    losses = model(Batch(feats, masks, [segments[0], torch.zeros(0, 2)],
                         [labels[0], torch.zeros(0, dtype=torch.long)]))
    assert torch.isfinite(losses["loss"])


def test_detect_outputs_seconds_and_proposals():
    model = build_model(tiny_cfg()).eval()
    feats, masks, _, _ = _batch()
    dets = model.predict(Batch(feats, masks, metadata=_meta(2)))
    assert [d["video_id"] for d in dets] == ["v0", "v1"]
    c, e = model.config, model.protocol
    for d in dets:
        m = d["segments"].shape[0]
        assert 0 < m <= e.max_seg_num and d["scores"].shape == (m,) and d["labels"].shape == (m,)
        assert (d["segments"] >= 0).all() and (d["segments"] <= 40.0).all()
        assert (d["segments"][:, 1] >= d["segments"][:, 0]).all()
        assert (d["scores"][:-1] >= d["scores"][1:]).all()
        assert ((d["labels"] >= 0) & (d["labels"] < 3)).all()
        k = d["proposals"].shape[0]
        assert 0 < k <= c.max_proposals and d["proposal_scores"].shape == (k,)
    with pytest.raises(KeyError, match="fps"):
        model.predict(Batch(feats, masks, metadata=[{"video_id": "a"}, {"video_id": "b"}]))


def test_heads_see_the_capped_candidates_grouped_by_length(monkeypatch):
    """Inference cost: the heads see at most ``max_candidates`` proposals per video, each
    group padded only to its own length, with the same detections as the T_p-padded input."""
    from pytal.models.seqattnet import model as model_module
    from pytal.models.seqattnet.amassment import GROUP_STEPS, amass

    torch.manual_seed(5)
    raw = tiny_raw(max_candidates=12)
    raw["dataset"]["max_seq_len"] = 40                  # T_p = 40: groups of 16, 32, 40 steps
    model = build_model(config_from_dict(raw)).eval()
    feats = torch.randn(3, 8, 40)
    masks = torch.ones(3, 1, 40, dtype=torch.bool)
    batch = Batch(feats, masks, metadata=_meta(3, t=40))
    seen = []
    hook = model.classification.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].shape, args[1].sum(1))))
    dets = model.predict(batch)
    hook.remove()
    assert sum(shape[0] for shape, _ in seen) <= 3 * 12
    for shape, count in seen:
        assert shape[2] <= model.proposal_length and (count > shape[2] - GROUP_STEPS).all()

    def one_group(feats, video, proposals, length):
        yield (torch.arange(len(proposals)), *amass(feats, video, proposals, length))

    monkeypatch.setattr(model_module, "amass_groups", one_group)
    padded = model.predict(batch)
    for got, want in zip(dets, padded):
        for key in ("segments", "scores", "labels", "proposals", "proposal_scores"):
            torch.testing.assert_close(got[key], want[key])


def test_detect_resizes_other_lengths_and_maps_back():
    model = build_model(tiny_cfg()).eval()
    feats, masks, _, _ = _batch(b=1)
    long = torch.randn(1, 8, 50)
    inner = torch.nn.functional.interpolate(long, size=20, mode="linear", align_corners=False)
    dets50 = model.predict(Batch(long, torch.ones(1, 1, 50, dtype=torch.bool),
                                 metadata=_meta(1, t=50)))
    dets20 = model.predict(Batch(inner, masks, metadata=_meta(1, t=20)))
    # a 50-step video is resized to 20 steps inside; its seconds are those of the 20-step grid
    for key in ("segments", "scores", "labels", "proposals"):
        torch.testing.assert_close(dets50[0][key], dets20[0][key], atol=1e-4, rtol=0)
    dets20 = model.predict(Batch(feats, masks, metadata=_meta(1, t=20)))
    padded = torch.cat([feats, torch.randn(1, 8, 7)], dim=2)
    pmask = torch.cat([masks, torch.zeros(1, 1, 7, dtype=torch.bool)], dim=2)
    dets_pad = model.predict(Batch(padded, pmask, metadata=_meta(1, t=20)))
    torch.testing.assert_close(dets_pad[0]["segments"], dets20[0]["segments"])


def test_tiny_overfit_learns_boundaries_and_classes():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(base_dim=32, hidden_3d=32, hidden_2d=16))
    t, c = 20, 8
    protos = torch.eye(c)[:3] * 3.0
    gts = [(torch.tensor([[3.0, 10.0]]), torch.tensor([1])),
           (torch.tensor([[6.0, 16.0]]), torch.tensor([2])),
           (torch.tensor([[1.0, 6.0], [11.0, 18.0]]), torch.tensor([0, 2]))]
    feats = 0.3 * torch.randn(len(gts), c, t)
    for v, (segs, labs) in enumerate(gts):
        for (s, e), k in zip(segs.tolist(), labs.tolist()):
            feats[v, :, int(s):int(e) + 1] += protos[k][:, None]
    masks = torch.ones(len(gts), 1, t, dtype=torch.bool)
    segments, labels = [g[0] for g in gts], [g[1] for g in gts]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(200):
        losses = model(Batch(feats, masks, segments, labels))
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in losses.items()}
    last = {k: float(v.detach()) for k, v in losses.items()}
    assert last["cls_loss"] < 0.1 * first["cls_loss"]
    assert last["te_loss"] < 0.5 * first["te_loss"]
    assert last["pe_loss"] < 0.5 * first["pe_loss"]
    model.eval()
    meta = [{"video_id": f"v{i}", "fps": 1.0, "duration": 20.0, "feat_stride": 1.0,
             "feat_num_frames": 1.0} for i in range(len(gts))]
    dets = model.predict(Batch(feats, masks, metadata=meta))
    for d, (segs, labs) in zip(dets, gts):
        seconds = segs + 0.5                              # step i is centred at i + 0.5 s
        for gt, label in zip(seconds, labs.tolist()):
            same = d["labels"] == label
            inter = (torch.minimum(d["segments"][same, 1], gt[1])
                     - torch.maximum(d["segments"][same, 0], gt[0])).clamp(min=0)
            union = (d["segments"][same, 1] - d["segments"][same, 0]) + (gt[1] - gt[0]) - inter
            assert (inter / union).max() > 0.7

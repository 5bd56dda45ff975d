"""benchmarks/peers_cltdr_gmg.py without the public code: it says the peer is missing, and its
pytal side (inputs, detect calls, training steps, interleaved timing) runs on a tiny model."""
from __future__ import annotations

import argparse

import pytest
import torch

from benchmarks import peers_cltdr_gmg as peers
from pytal.config import config_from_dict
from pytal.models import build_model

from test_cltdr_model import _tiny


def test_without_the_peer_it_says_so_and_measures_nothing(capsys, tmp_path):
    assert peers.main([]) == 0
    assert "missing" in capsys.readouterr().out
    assert peers.main(["--release", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cannot load" in out and "skipped" in out


def test_pytal_side_on_a_tiny_model(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        raw = _tiny("release")
        raw["dataset"]["num_classes"] = 20                  # THUMOS14's classes
        cfg = config_from_dict(raw)
        tests, trains = peers.thumos_videos(str(tmp_path / "data"), cfg, test=2, train=2)
        assert len(tests) == 2 and len(trains) == 2
        assert all(v["feats"].shape[0] == cfg.dataset.input_dim for v in tests + trains)
        assert all(v["feats"].shape[1] <= cfg.dataset.max_seq_len for v in trains)  # cropped
        model = build_model(cfg).eval()
        one = peers.pytal_detect(model, tests[:1])()
        both = peers.pytal_detect(model, tests)()
        assert [d["video_id"] for d in both] == [v["video_id"] for v in tests]
        assert one[0]["scores"].numel() > 0 and all(d["scores"].numel() > 0 for d in both)
        half = peers.pytal_detect(model, tests[:1], "bf16")()
        assert half[0]["scores"].dtype == torch.float32 and half[0]["scores"].numel() > 0

        model.train()
        full = peers.full_length_videos(cfg, 2, 40)
        assert [v["feats"].shape for v in full] == [(cfg.dataset.input_dim, 40)] * 2
        before = [p.detach().clone() for p in model.parameters()]
        step = peers.train_step(peers.pytal_loss(model, trains), list(model.parameters()),
                                peers.optimizer_of(model))
        rounds = [{"a": step, "b": peers.train_step(peers.pytal_loss(model, full),
                                                    list(model.parameters()),
                                                    peers.optimizer_of(model))}] * 2
        times, first = peers.timed_rounds(rounds)
        assert set(times) == set(first) == {"a", "b"} and all(len(t) == 2 for t in times.values())
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        line = peers.summary("a", times["a"], first["a"], times["b"])
        assert "median" in line and "public/pytal" in line
    finally:
        torch.set_num_threads(threads)


def test_module_times_split_one_call_by_submodule():
    raw = _tiny("release")
    cfg = config_from_dict(raw)
    model = build_model(cfg).eval()
    (video,) = peers.full_length_videos(cfg, 1, 48)
    total, parts = peers.module_times(model, peers.pytal_detect(model, [video]), repeats=2)
    assert {"encoder", "cls_head", "trident_head", "refine_head"} <= set(parts)
    assert all(t >= 0 for t in parts.values()) and 0 < sum(parts.values()) <= total
    assert not model.encoder._forward_hooks and not model.encoder._forward_pre_hooks  # removed


def test_profile_lengths_are_parsed_and_checked():
    assert peers._lengths("148,2304") == [148, 2304]
    for bad in ("", "0", "a,3", "12,-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="lengths >= 1"):
            peers._lengths(bad)

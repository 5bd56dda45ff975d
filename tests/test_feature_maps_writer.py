"""The packed I3D maps of TAL-MTS's features backbone: the layout, ``pytal extract-maps`` (frames
-> files), the synthetic maps, and the round trip files -> dataset -> model."""
import json
import os

import numpy as np
import pytest
import torch

from pytal.backbones.feature_maps import (build_i3d_stream, i3d_video_maps, pack_feature_maps,
                                          packed_dim, unpack_feature_maps)
from pytal.cli import main
from pytal.config import load_config
from pytal.data.batch import Batch
from pytal.data import collate
from pytal.data.synthetic.frames import write_frame_dataset
from pytal.engine.data import build_dataset
from pytal.models import build_model


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_frame_dataset(tmp_path_factory.mktemp("maps_frames"), num_videos=4,
                               duration_range=(2.6, 4.0), action_seconds=(0.8, 1.5),
                               flow=True, maps=True, seed=5)


def test_pack_layout_by_hand():
    m4 = torch.arange(2 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 4, 2, 2)   # (C4, T/4, S, S)
    m5 = -torch.arange(3 * 2, dtype=torch.float32).reshape(3, 2, 1, 1)          # (C5, T/8, 1, 1)
    rows = pack_feature_maps(m4, m5)
    assert rows.shape == (2, packed_dim((2, 3), (2, 1))) == (2, 2 * 2 * 4 + 3)
    # row 1: Mixed_4f steps 2 and 3 (channel, y, x), then Mixed_5c step 1
    expected = torch.cat([m4[:, 2].reshape(-1), m4[:, 3].reshape(-1), m5[:, 1].reshape(-1)])
    torch.testing.assert_close(rows[1], expected)
    a, b = unpack_feature_maps(rows.T[None], (2, 3), (2, 1))
    torch.testing.assert_close(a[0], m4)
    torch.testing.assert_close(b[0], m5)


def test_i3d_video_maps_are_the_chunks_maps():
    net, weights_id = build_i3d_stream("rgb", "random")
    assert weights_id == "random-seed0"
    video = np.random.default_rng(0).integers(0, 256, (21, 32, 32, 3), dtype=np.uint8)
    rows = i3d_video_maps(net, video, chunk=16)
    assert rows.shape == (3, packed_dim((832, 1024), (2, 1)))      # ceil(21 / 8) rows
    with torch.no_grad():
        x = torch.from_numpy(video[:16]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        m4, m5 = net.mixed_maps(x)
        torch.testing.assert_close(rows[:2], pack_feature_maps(m4[0], m5[0]))
        tail = np.concatenate([video[16:], np.repeat(video[-1:], 3, axis=0)])   # padded to 8
        x = torch.from_numpy(tail).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
        m4, m5 = net.mixed_maps(x)
        torch.testing.assert_close(rows[2:], pack_feature_maps(m4[0], m5[0]))
    with pytest.raises(ValueError, match="multiple of 8"):
        i3d_video_maps(net, video, chunk=12)


def _model_round_trip(cfg):
    """Training losses and detections of a batch of the config's datasets."""
    torch.manual_seed(0)
    model = build_model(cfg)
    train = build_dataset(cfg, "train")
    batch = Batch.from_collated(collate([train[i] for i in range(2)]))
    losses = model(batch)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    val = build_dataset(cfg, "val")
    model.eval()
    out = model.predict(Batch.from_collated(collate([val[0]])))
    assert out[0]["video_id"] == val.videos[0].video_id
    return train


def _features_overrides(frames, feature_dir, channels, streams=("rgb",)):
    d = len(streams) * packed_dim(channels, (2, 1))
    return {"model.backbone": "features", "model.fsa": False, "model.streams": list(streams),
            "model.map_channels": list(channels), "model.stt_dim": 16,
            "dataset.annotation_file": frames.annotation_file, "dataset.frame_dir": "",
            "dataset.feature_dir": feature_dir, "dataset.feat_stride": 8,
            "dataset.num_frames": 8, "dataset.input_dim": d, "dataset.max_seq_len": 16,
            "dataset.clip_stride": 2}


def test_extract_maps_cli_round_trip(frames, tmp_path, capsys):
    out = str(tmp_path / "maps")
    args = [frames.frame_dir, "--out", out, "--flow", frames.flow_dir, "--weights", "random",
            "--flow-weights", "random", "--chunk", "16", "--threads", "1", "--size"]
    assert main(["extract-maps", *args, "32"]) == 0
    assert "4 written, 0 already done, 0 failed" in capsys.readouterr().out
    record = json.load(open(os.path.join(out, "maps.json")))
    assert record["streams"] == ["rgb", "flow"] and record["map_sizes"] == [2, 1]
    video = np.load(os.path.join(frames.frame_dir, "video_0.npy"))
    rows = np.load(os.path.join(out, "video_0.npy"))
    per_stream = packed_dim((832, 1024), (2, 1))
    assert rows.shape == (-(-video.shape[0] // 8), 2 * per_stream) and rows.dtype == np.float32
    net, _ = build_i3d_stream("flow", "random")
    flow = np.load(os.path.join(frames.flow_dir, "video_0.npy"))
    np.testing.assert_allclose(rows[:, per_stream:], i3d_video_maps(net, flow, chunk=16).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert main(["extract-maps", *args, "32"]) == 0                 # resumed: nothing to do
    assert "0 written, 4 already done" in capsys.readouterr().out
    assert main(["extract-maps", *args, "64"]) == 1                 # other settings: refused
    assert "use another output folder" in capsys.readouterr().err
    cfg = load_config("talmts_small", _features_overrides(frames, out, (832, 1024),
                                                          ("rgb", "flow")))
    _model_round_trip(cfg)


def test_synthetic_maps_are_learnable_and_load(frames):
    rows = np.load(os.path.join(frames.maps_dir, "video_0.npy"))
    video = np.load(os.path.join(frames.frame_dir, "video_0.npy"))
    assert rows.shape == (-(-video.shape[0] // 8), packed_dim(frames.map_channels, (2, 1)))
    anns = json.load(open(frames.annotation_file))["database"]["video_0"]["annotations"]
    (start, end), c = anns[0]["segment"], anns[0]["label_id"]
    m4, _ = unpack_feature_maps(torch.from_numpy(rows).T[None], frames.map_channels, (2, 1))
    first, last = round(start * 10), round(end * 10)
    k = -(-first // 4)                         # the first Mixed_4f step (4 frames) inside it
    assert 4 * k + 4 <= last and m4[0, c, k, 0].mean() > 1.0      # class c's square: row 0
    busy = {f // 4 for a in anns for f in range(round(a["segment"][0] * 10),
                                                   round(a["segment"][1] * 10))}
    quiet = [j for j in range(m4.shape[2]) if j not in busy]
    assert quiet and abs(float(m4[0, c, quiet, 0].mean())) < 0.5
    cfg = load_config("talmts_small", _features_overrides(frames, frames.maps_dir,
                                                          frames.map_channels))
    train = _model_round_trip(cfg)
    assert train.clips is not None

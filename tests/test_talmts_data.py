"""Frame-clip data for TAL-MTS: the synthetic frame videos, FrameClipDataset, pytal train."""
import json
import os

import numpy as np
import pytest
import torch

from pytal.config import load_config
from pytal.data.frames import FrameClipDataset, flatten_frames
from pytal.data.synthetic.frames import write_frame_dataset
from pytal.engine.data import build_dataset
from pytal.config import PACKAGE_DIR


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_frame_dataset(tmp_path_factory.mktemp("frames"), num_videos=6, flow=True,
                               duration_range=(14.0, 20.0), seed=3)


def test_synthetic_frames_deterministic_and_annotated(frames, tmp_path):
    again = write_frame_dataset(tmp_path, num_videos=6, flow=True, duration_range=(14.0, 20.0),
                                seed=3)
    a = np.load(os.path.join(frames.frame_dir, "video_0.npy"))
    np.testing.assert_array_equal(a, np.load(os.path.join(again.frame_dir, "video_0.npy")))
    ann = json.load(open(frames.annotation_file))["database"]["video_0"]
    assert a.shape == (round(ann["duration"] * 10), 32, 32, 3) and a.dtype == np.uint8
    (start, end), c = ann["annotations"][0]["segment"], ann["annotations"][0]["label_id"]
    first, last = round(start * 10), round(end * 10)
    middle = (first + last) // 2                               # full strength after the fade
    assert (a[middle, :, :, c % 3] == 250).sum() == 8 * 8      # the class's square
    flow = np.load(os.path.join(frames.flow_dir, "video_0.npy"))
    assert (flow[middle, ..., 0] == 160).sum() == 64
    # fading in: the first frame shows 1 / (a quarter of the action's frames) of the square
    fade = max(1, round(0.25 * (last - first)))
    assert (flow[first, ..., 0] == round(128 + 32 / fade)).sum() == 64


def test_packaged_small_annotations_are_the_generator_defaults(tmp_path):
    ds = write_frame_dataset(tmp_path)
    packaged = json.load(open(os.path.join(PACKAGE_DIR, "resources", "talmts_synthetic.json")))
    assert json.load(open(ds.annotation_file)) == packaged


def test_flatten_frames_layout():
    x = torch.arange(2 * 3 * 3 * 5, dtype=torch.uint8).reshape(2, 3, 3, 5)
    flat = flatten_frames(x)
    assert flat.shape == (45, 2)
    assert flat[(4 * 3 + 2) * 3 + 1, 1] == x[1, 2, 1, 4]


def test_frame_clip_dataset_items(frames):
    common = dict(annotation_file=frames.annotation_file, frame_dir=frames.frame_dir,
                  flow_dir=frames.flow_dir, frame_fps=10.0, frame_crop=24, input_dim=5 * 24 * 24)
    val = FrameClipDataset(subset="validation", **{k: v for k, v in common.items()
                                                   if k not in ("annotation_file", "frame_dir")},
                           annotation_file=frames.annotation_file, frame_dir=frames.frame_dir)
    item = val[0]
    video = np.load(os.path.join(frames.frame_dir, f"{item['video_id']}.npy"))
    assert item["feats"].shape == (5 * 24 * 24, video.shape[0])
    assert item["feat_stride"] == 1 and item["fps"] == 10.0
    centre = torch.from_numpy(video[:, 4:28, 4:28]).permute(3, 1, 2, 0).reshape(-1, video.shape[0])
    torch.testing.assert_close(item["feats"][:3 * 576], centre.float())
    ann = json.load(open(frames.annotation_file))["database"][item["video_id"]]["annotations"]
    torch.testing.assert_close(item["segments"][0],
                               torch.tensor(ann[0]["segment"]) * 10 - 0.5)
    train = FrameClipDataset(subset="training", training=True, max_seq_len=64,
                             generator=torch.Generator().manual_seed(0), **common)
    flips = 0
    for _ in range(8):
        item = train[0]
        assert item["feats"].shape == (5 * 576, 64)
        flow_u = item["feats"][3 * 576:4 * 576]
        flips += int((flow_u == 255 - 160).any())
    assert 0 < flips < 8


def test_frames_file_errors_name_the_file(tmp_path, frames):
    bad = tmp_path / "frames"
    bad.mkdir()
    for vid in json.load(open(frames.annotation_file))["database"]:
        np.save(bad / f"{vid}.npy", np.zeros((5, 8, 8), np.uint8))
    ds = FrameClipDataset(frames.annotation_file, str(bad), subset="validation", frame_fps=10.0,
                          length_tolerance=None)
    with pytest.raises(ValueError, match=r"frame file .*video_.*\.npy: expected a uint8"):
        ds[0]


def test_config_builds_frame_dataset(frames):
    cfg = load_config("talmts_small", {"dataset.frame_dir": frames.frame_dir,
                                       "dataset.annotation_file": frames.annotation_file})
    assert isinstance(build_dataset(cfg, "val"), FrameClipDataset)

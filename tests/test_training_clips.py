"""Fixed training clips (AFSD's rule): enumeration against hand-computed windows, the dataset's
items, the config key."""
import json

import numpy as np
import pytest
import torch

from pytal.config import ConfigError, load_config
from pytal.data.clips import clip_starts, training_clips
from pytal.data.frames import FrameClipDataset


def test_clip_starts_hand_computed():
    # 300 steps, windows of 128 every 30: 0..150 by 30, then 172 = 300 - 128 (not on the grid)
    assert clip_starts(300, 128, 30) == [0, 30, 60, 90, 120, 150, 172]
    assert clip_starts(188, 128, 30) == [0, 30, 60]            # 60 = 188 - 128 is on the grid
    assert clip_starts(128, 128, 30) == [0]
    assert clip_starts(100, 128, 30) == [0]
    assert clip_starts(129, 128, 256) == [0, 1]
    with pytest.raises(ValueError, match="stride"):
        clip_starts(100, 128, 0)


def test_training_clips_keep_windows_with_a_whole_action():
    segments = [torch.tensor([[10.0, 50.0], [140.0, 200.0]]),   # 300 steps
                torch.tensor([[20.0, 80.0]]),                   # 100 steps: one window
                torch.zeros(0, 2),                              # no action: no clip
                torch.tensor([[5.0, 295.0]])]                   # longer than a window: none
    clips = training_clips([300, 100, 300, 300], segments, window=128, stride=30, offset=0.5)
    # window s spans [s - 0.5, s + 128.5]: [10, 50] fits s = 0 only; [140, 200] fits
    # 71.5 <= s <= 140.5, i.e. s = 90 and 120
    assert clips == [(0, 0), (0, 90), (0, 120), (1, 0)]


@pytest.fixture()
def tiny_frames(tmp_path):
    """One 300-frame video at 10 fps whose frame t has every pixel equal to t % 256, actions
    at steps [10, 50] and [140, 200], and one 100-frame video with an action at [20, 80]."""
    frame_dir = tmp_path / "frames"
    frame_dir.mkdir()
    database = {}
    for vid, frames, segments in (("a", 300, [[1.05, 5.05], [14.05, 20.05]]),
                                  ("b", 100, [[2.05, 8.05]])):
        video = np.broadcast_to((np.arange(frames) % 256).astype(np.uint8)[:, None, None, None],
                                (frames, 32, 32, 3))
        np.save(frame_dir / f"{vid}.npy", np.ascontiguousarray(video))
        database[vid] = {"subset": "training", "duration": frames / 10, "fps": 10.0,
                         "annotations": [{"segment": s, "label": "x", "label_id": 0}
                                         for s in segments]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"database": database}))
    return str(path), str(frame_dir)


def test_frame_dataset_items_are_the_clips(tiny_frames):
    ann, frame_dir = tiny_frames
    ds = FrameClipDataset(ann, frame_dir, subset="training", frame_fps=10.0, training=True,
                          max_seq_len=128, clip_stride=30, input_dim=3072,
                          generator=torch.Generator().manual_seed(0))
    assert ds.clips == [(0, 0), (0, 90), (0, 120), (1, 0)] and len(ds) == 4
    item = ds[1]                                              # video a from frame 90
    assert item["video_id"] == "a" and item["feats"].shape == (3072, 128)
    torch.testing.assert_close(item["feats"][0], torch.arange(90, 218, dtype=torch.float32))
    # [10, 50] lies outside the window; [140, 200] shifted by 90
    torch.testing.assert_close(item["segments"], torch.tensor([[50.0, 110.0]]))
    assert item["labels"].tolist() == [0]
    short = ds[3]                                            # video b, shorter than a clip
    assert short["video_id"] == "b" and short["feats"].shape == (3072, 100)
    # without clip_stride: one item per video
    assert len(FrameClipDataset(ann, frame_dir, subset="training", frame_fps=10.0,
                                training=True, max_seq_len=128, input_dim=3072)) == 2


def test_videos_without_a_clip_are_named(tiny_frames):
    ann, frame_dir = tiny_frames
    # 64-step windows: b's [20, 80] would need a start in [15.5, 20.5] (b's are 0, 30, 36)
    with pytest.warns(UserWarning, match=r"1 of 2 videos .* no training clip .*'b'"):
        ds = FrameClipDataset(ann, frame_dir, subset="training", frame_fps=10.0, training=True,
                              max_seq_len=64, clip_stride=30, input_dim=3072)
    assert ds.clips == [(0, 0)]
    with pytest.raises(ValueError, match="no training clip of 32 steps"):
        FrameClipDataset(ann, frame_dir, subset="training", frame_fps=10.0, training=True,
                         max_seq_len=32, clip_stride=30, input_dim=3072)


def test_config_key(tiny_frames):
    ann, frame_dir = tiny_frames
    cfg = load_config("talmts_small", {"dataset.annotation_file": ann,
                                       "dataset.frame_dir": frame_dir, "dataset.input_dim": 3072,
                                       "dataset.train_subset": "training",
                                       "dataset.val_subset": "training"})
    assert cfg.dataset.clip_stride == 30
    ds = FrameClipDataset.from_config(cfg.dataset, training=True)
    assert ds.clips == [(0, 0), (0, 90), (0, 120), (1, 0)]
    assert FrameClipDataset.from_config(cfg.dataset, training=False).clips is None
    with pytest.raises(ConfigError, match="dataset.clip_stride"):
        load_config("talmts_small", {"dataset.clip_stride": 0})


def test_clip_lengths_are_checked_against_the_duration(tiny_frames):
    ann, frame_dir = tiny_frames
    np.save(f"{frame_dir}/a.npy", np.zeros((150, 32, 32, 3), np.uint8))     # 30 s at 10 fps
    with pytest.raises(ValueError, match=r"a\.npy: 150 features, but duration 30"):
        FrameClipDataset(ann, frame_dir, subset="training", frame_fps=10.0, training=True,
                         max_seq_len=128, clip_stride=30, input_dim=3072)

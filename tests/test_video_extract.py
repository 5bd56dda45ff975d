"""pytal extract: features per video, manifest, resume, failures, FeatureDataset round trip."""
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from pytal.backbones import WeightsNotFound, build_backbone  # noqa: E402
from pytal.cli import main  # noqa: E402
from pytal.data import FeatureDataset  # noqa: E402
from pytal.data.timing import FeatureGrid  # noqa: E402
from pytal.video import window_centres  # noqa: E402
from pytal.video.extract import ExtractionSettings, extract_videos  # noqa: E402
from pytal.video.synthetic import write_synthetic_video  # noqa: E402

# Tiny I3D inputs so the tests stay fast: 8-frame windows every 4 frames, 32 x 32 crops.
TINY = ExtractionSettings(backbone="i3d", fps=None, num_frames=8, stride=4, resize=(36,),
                          crop=(32, 32))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    write_synthetic_video(str(folder / "v25.mp4"), seconds=3.0, fps=25, seed=1)   # 75 frames
    write_synthetic_video(str(folder / "v30.mp4"), seconds=2.0, fps=30, seed=2)   # 60 frames
    return folder


def quiet(*_):
    pass


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions on a shared machine: more threads only oversubscribe it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_extract_shapes_manifest_and_timing(videos, tmp_path):
    out = str(tmp_path / "feats")
    report = extract_videos([str(videos)], out, TINY, weights="random", log=quiet)
    assert report.written == ["v25", "v30"] and not report.failed
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    for vid, frames, fps in (("v25", 75, 25.0), ("v30", 60, 30.0)):
        feats = np.load(os.path.join(out, vid + ".npy"))
        t = (frames - 8) // 4 + 1                    # 17 and 14
        assert feats.shape == (t, 1024) and feats.dtype == np.float32
        assert np.isfinite(feats).all() and feats.std() > 0
        entry = manifest["videos"][vid]
        assert entry["frames"] == frames and entry["fps"] == fps
        assert entry["duration"] == pytest.approx(frames / fps)
        assert entry["num_features"] == t and entry["weights"] == "random-seed0"
        # the feature times the detectors use are the window centres
        grid = FeatureGrid(fps, 4, 8)
        np.testing.assert_allclose(grid.to_seconds(np.arange(t)),
                                   window_centres(t, 8, 4, fps))
        np.testing.assert_allclose(grid.to_seconds(np.arange(t))[:2], [4 / fps, 8 / fps])
    assert manifest["settings"] == {"backbone": "i3d", "fps": None, "num_frames": 8, "stride": 4,
                                    "resize": [36], "crop": [32, 32], "weights": "random-seed0"}


def test_resampled_extraction_counts_resampled_frames(videos, tmp_path):
    settings = ExtractionSettings(backbone="i3d", fps=10, num_frames=8, stride=4, resize=(36,),
                                  crop=(32, 32))
    out = str(tmp_path / "f")
    extract_videos([str(videos / "v25.mp4")], out, settings, weights="random", log=quiet)
    # 3 s at 10 fps = 30 frames -> floor((30 - 8) / 4) + 1 = 6 windows
    assert np.load(os.path.join(out, "v25.npy")).shape == (6, 1024)
    entry = json.load(open(os.path.join(out, "manifest.json")))["videos"]["v25"]
    assert (entry["frames"], entry["fps"], entry["native_fps"]) == (30, 10.0, 25.0)


def test_extraction_is_deterministic(videos, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    extract_videos([str(videos / "v30.mp4")], a, TINY, weights="random", log=quiet)
    extract_videos([str(videos / "v30.mp4")], b, TINY, weights="random", log=quiet, batch_size=3)
    np.testing.assert_array_equal(np.load(os.path.join(a, "v30.npy")),
                                  np.load(os.path.join(b, "v30.npy")))


def test_round_trip_through_feature_dataset(videos, tmp_path):
    out = str(tmp_path / "feats")
    extract_videos([str(videos)], out, TINY, weights="random", log=quiet)
    manifest = json.load(open(os.path.join(out, "manifest.json")))["videos"]
    ann = {"database": {vid: {"subset": "test", "duration": m["duration"], "fps": m["fps"],
                              "annotations": [{"segment": [0.5, 1.5], "label": "move"}]}
                        for vid, m in manifest.items()}}
    ds = FeatureDataset(ann, out, subset="test", feat_stride=4, num_frames=8)
    assert len(ds) == 2
    for item in ds:
        feats = np.load(os.path.join(out, item["video_id"] + ".npy"))
        np.testing.assert_array_equal(item["feats"].numpy(), feats.T)
        grid = FeatureGrid(item["fps"], item["feat_stride"], item["feat_num_frames"])
        # segment [0.5, 1.5] s in feature steps, back to seconds
        np.testing.assert_allclose(grid.to_seconds(item["segments"].numpy()), [[0.5, 1.5]],
                                   rtol=1e-5)


def test_short_video_gives_one_padded_window(tmp_path):
    path = write_synthetic_video(str(tmp_path / "short.mp4"), seconds=0.2, fps=25)  # 5 frames
    out = str(tmp_path / "f")
    report = extract_videos([path], out, TINY, weights="random", log=quiet)
    assert report.written == ["short"]
    assert np.load(os.path.join(out, "short.npy")).shape == (1, 1024)
    assert json.load(open(os.path.join(out, "manifest.json")))["videos"]["short"]["frames"] == 5


def test_resume_skips_finished_videos(videos, tmp_path):
    out = str(tmp_path / "feats")
    extract_videos([str(videos)], out, TINY, weights="random", log=quiet)
    stamp = {v: os.stat(os.path.join(out, v + ".npy")).st_mtime_ns for v in ("v25", "v30")}
    report = extract_videos([str(videos)], out, TINY, weights="random", log=quiet)
    assert report.skipped == ["v25", "v30"] and report.written == []
    assert all(os.stat(os.path.join(out, v + ".npy")).st_mtime_ns == stamp[v] for v in stamp)
    os.remove(os.path.join(out, "v30.npy"))
    report = extract_videos([str(videos)], out, TINY, weights="random", log=quiet)
    assert report.skipped == ["v25"] and report.written == ["v30"]
    # a folder of other features is refused, naming the setting
    other = ExtractionSettings(backbone="i3d", fps=None, num_frames=8, stride=2, resize=(36,),
                               crop=(32, 32))
    with pytest.raises(ValueError, match="stride=4.*stride=2"):
        extract_videos([str(videos)], out, other, weights="random", log=quiet)


def test_bad_videos_are_skipped_and_listed(videos, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_synthetic_video(str(folder / "good.mp4"), seconds=0.6, fps=25)  # 15 frames
    (folder / "corrupt.mp4").write_bytes(b"garbage" * 50)
    out = str(tmp_path / "feats")
    status = main(["extract", str(folder), "--out", out, "--backbone", "i3d", "--num-frames", "8",
                   "--stride", "4", "--weights", "random", "--no-progress", "--batch-size", "4"])
    text = capsys.readouterr().out
    assert status == 1
    assert "1 written, 0 already done, 1 failed" in text
    assert "failed: " in text and "corrupt.mp4: not a readable video" in text
    assert os.path.isfile(os.path.join(out, "good.npy"))
    assert not os.path.exists(os.path.join(out, "corrupt.npy"))
    assert list(json.load(open(os.path.join(out, "manifest.json")))["videos"]) == ["good"]


def test_cli_presets_and_missing_weights(tmp_path, capsys, monkeypatch, videos):
    assert main(["extract", "--list-presets"]) == 0
    listing = capsys.readouterr().out
    assert "thumos14_i3d: i3d, 16 frames, stride 4, video fps" in listing
    assert "activitynet_r2plus1d: r2plus1d_18, 16 frames, stride 16, 15 fps" in listing
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert main(["extract", str(videos), "--out", str(tmp_path / "f"), "--preset",
                 "thumos14_i3d"]) == 1
    err = capsys.readouterr().err
    assert "pytal extract: error: backbone i3d: no weights; pass --weights PATH, or put " \
           "rgb_imagenet.pt" in err and str(tmp_path / "torch_home") in err
    assert main(["extract", str(videos), "--out", str(tmp_path / "f")]) == 1
    assert "pass --preset NAME" in capsys.readouterr().err
    with pytest.raises(WeightsNotFound, match="weights file not found: .*nope.pt"):
        build_backbone("i3d", str(tmp_path / "nope.pt"))


def test_weights_by_path_and_from_the_cache(tmp_path, monkeypatch):
    random_encoder = build_backbone("i3d", "random")
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(random_encoder.network.state_dict(), path)
    by_path = build_backbone("i3d", str(path))
    assert len(by_path.weights_id) == 16 and by_path.weights_id != "random-seed0"
    clips = torch.randint(0, 256, (2, 8, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(by_path(clips), random_encoder(clips))
    cache = tmp_path / "home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    os.replace(path, cache / "rgb_imagenet.pt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    assert build_backbone("i3d").weights_id == by_path.weights_id


@pytest.mark.parametrize("name,dim,size,frames", [
    ("r2plus1d_18", 512, 32, 8), ("s3d", 1024, 32, 8), ("swin3d_t", 768, 32, 8),
    ("mvit_v2_s", 768, 224, 16)])
def test_torchvision_backbones(name, dim, size, frames):
    pytest.importorskip("torchvision")
    encoder = build_backbone(name, "random")
    clips = torch.randint(0, 256, (1, frames, size, size, 3), dtype=torch.uint8)
    with torch.no_grad():
        feats = encoder(clips)
    assert feats.shape == (1, dim) and torch.isfinite(feats).all()
    assert encoder.feature_dim == dim


def test_fixed_frame_backbone_refuses_other_windows(videos, tmp_path):
    pytest.importorskip("torchvision")
    settings = ExtractionSettings(backbone="mvit_v2_s", fps=None, num_frames=8, stride=4)
    with pytest.raises(ValueError, match="exactly 16 frames, got num_frames 8"):
        extract_videos([str(videos)], str(tmp_path / "f"), settings, weights="random", log=quiet)


def test_two_videos_with_one_id_are_refused(videos, tmp_path):
    from pytal.video.extract import list_videos
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        os.symlink(videos / "v30.mp4", tmp_path / d / "same.mp4")
    with pytest.raises(ValueError, match="two videos with id 'same'"):
        list_videos([str(tmp_path / "a"), str(tmp_path / "b" / "same.mp4")])
    with pytest.raises(FileNotFoundError, match="no video file"):
        list_videos([str(tmp_path)])

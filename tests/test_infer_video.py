"""pytal infer VIDEO: extraction settings travel from the feature manifest through pytal train
into the checkpoint; inference on videos writes detections JSON, a timeline PNG and SRT."""
import json
import os
import re

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from pytal.cli import main  # noqa: E402
from pytal.video.extract import ExtractionSettings, extract_videos  # noqa: E402
from pytal.video.subtitles import detections_srt, srt_time  # noqa: E402
from pytal.video.synthetic import write_synthetic_video  # noqa: E402

TINY_MODEL = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16",
              "model.head_num_layers=1", "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]",
              "model.num_bins=4", "model.regression_range=[[0,4],[4,8],[8,10000]]",
              "dataset.max_seq_len=64"]
SETTINGS = ExtractionSettings(backbone="i3d", fps=None, num_frames=8, stride=4, resize=(36,),
                              crop=(32, 32))
SRT_BLOCK = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+) \((\d\.\d\d)\)\n")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer_video")
    videos = {}
    for i, (fps, seconds) in enumerate([(25, 5.0), (30, 4.0), (25, 4.0), (30, 5.0)]):
        videos[f"clip{i}"] = write_synthetic_video(str(root / "videos" / f"clip{i}.mp4"),
                                                   seconds=seconds, fps=fps, seed=i)
    feats = str(root / "feats")
    extract_videos(list(videos.values()), feats, SETTINGS, weights="random", log=lambda _: None)
    manifest = json.load(open(os.path.join(feats, "manifest.json")))
    database = {vid: {"subset": "training" if i < 2 else "validation",
                      "duration": m["duration"], "fps": m["fps"],
                      "annotations": [{"segment": [1.0, 2.5], "label": "square"},
                                      {"segment": [2.6, 3.6], "label": "circle"}]}
                for i, (vid, m) in enumerate(sorted(manifest["videos"].items()))}
    ann = root / "ann.json"
    ann.write_text(json.dumps({"database": database}))
    run = root / "run"
    overrides = [f"dataset.annotation_file={ann}", f"dataset.feature_dir={feats}",
                 "dataset.input_dim=1024", "dataset.num_classes=2", "dataset.feat_stride=4",
                 "dataset.num_frames=8", "dataset.train_subset=training",
                 "dataset.val_subset=validation", "train.epochs=1", "train.warmup_epochs=0",
                 "train.batch_size=2", *TINY_MODEL]
    assert main(["train", "cltdr_gmg_small", "--output", str(run), "--no-progress",
                 "--threads", "1", "--override", *overrides]) == 0
    return videos, manifest, run


def test_train_copies_the_manifest_settings_into_checkpoints(trained):
    _, manifest, run = trained
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(run / name, map_location="cpu", weights_only=False)
        assert ckpt["extraction"] == manifest["settings"]


def test_infer_videos_writes_json_png_srt(trained, tmp_path, capsys):
    videos, manifest, run = trained
    out = tmp_path / "out"
    status = main(["infer", "--ckpt", str(run / "best.pt"), videos["clip0"], videos["clip1"],
                   "--out", str(out), "--no-progress", "--min-score", "0", "--threads", "1"])
    assert status == 0, capsys.readouterr()
    assert "detections in 2 video(s)" in capsys.readouterr().out
    results = json.loads((out / "detections.json").read_text())["results"]
    assert set(results) == {"clip0", "clip1"}
    for vid, entries in results.items():
        duration = manifest["videos"][vid]["duration"]
        assert entries, vid
        assert all(e["label"] in ("square", "circle") for e in entries)
        assert all(-1e-6 <= e["segment"][0] <= e["segment"][1] <= duration + 1e-6
                   for e in entries)
        assert (out / f"{vid}.timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        blocks = SRT_BLOCK.findall((out / f"{vid}.srt").read_text())
        assert len(blocks) == min(50, len(entries))
        assert [int(b[0]) for b in blocks] == list(range(1, len(blocks) + 1))
        best = max(entries, key=lambda e: e["score"])
        assert (srt_time(best["segment"][0]), srt_time(best["segment"][1]), best["label"],
                f"{best['score']:.2f}") in [b[1:] for b in blocks]
    # same detections as inference on the features extracted for training
    det = tmp_path / "from_features.json"
    feature_file = os.path.join(str(run), "..", "feats", "clip0.npy")
    assert main(["infer", "--ckpt", str(run / "best.pt"), "--features", feature_file,
                 "--out", str(det)]) == 0
    want = json.loads(det.read_text())["results"]["clip0"]
    assert [e["label"] for e in results["clip0"]] == [e["label"] for e in want]
    np.testing.assert_allclose([e["segment"] + [e["score"]] for e in results["clip0"]],
                               [e["segment"] + [e["score"]] for e in want], rtol=1e-5, atol=1e-6)


def test_infer_video_failures_and_missing_settings(trained, tmp_path, capsys):
    videos, _, run = trained
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    out = tmp_path / "out"
    assert main(["infer", "--ckpt", str(run / "best.pt"), videos["clip2"], str(bad),
                 "--out", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "failed: " in text and "bad.mp4: not a readable video" in text
    assert set(json.loads((out / "detections.json").read_text())["results"]) == {"clip2"}

    ckpt = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    ckpt["extraction"] = None
    bare = tmp_path / "bare.pt"
    torch.save(ckpt, bare)
    assert main(["infer", "--ckpt", str(bare), videos["clip2"], "--out", str(out)]) == 1
    assert "records no extraction settings" in capsys.readouterr().err

    other = tmp_path / "other_i3d.pt"
    from pytal.backbones import InceptionI3d
    torch.save(InceptionI3d().state_dict(), other)
    assert main(["infer", "--ckpt", str(run / "best.pt"), videos["clip2"], "--out", str(out),
                 "--backbone-weights", str(other)]) == 1
    assert "trained on features of i3d weights random-seed0" in capsys.readouterr().err
    assert main(["infer", "--ckpt", str(run / "best.pt"), "--out", str(out)]) == 1
    assert "pass --features DIR_OR_FILE or VIDEO" in capsys.readouterr().err


def test_srt_by_hand():
    assert srt_time(0) == "00:00:00,000"
    assert srt_time(3725.4567) == "01:02:05,457"
    assert srt_time(-0.2) == "00:00:00,000"
    entries = [{"label": "jump", "score": 0.9, "segment": [4.0, 6.5]},
               {"label": "run", "score": 0.2, "segment": [0.0, 1.0]},
               {"label": "run", "score": 0.5, "segment": [1.25, 3.0]}]
    assert detections_srt(entries, min_score=0.3) == (
        "1\n00:00:01,250 --> 00:00:03,000\nrun (0.50)\n\n"
        "2\n00:00:04,000 --> 00:00:06,500\njump (0.90)\n")
    assert detections_srt(entries, min_score=0.0, max_entries=1) == (
        "1\n00:00:04,000 --> 00:00:06,500\njump (0.90)\n")


def test_settings_from_checkpoint_preset_and_options():
    import argparse
    from pytal.video_commands import settings_from_args

    def args(**kw):
        base = dict(preset=None, backbone=None, fps=None, num_frames=None, stride=None)
        return argparse.Namespace(**{**base, **kw})

    recorded = dict(SETTINGS.to_dict(), weights="abc")
    same = settings_from_args(args(), recorded)
    assert same == ExtractionSettings.from_dict(recorded)
    faster = settings_from_args(args(fps=10.0), recorded)
    assert (faster.fps, faster.crop, faster.weights) == (10.0, (32, 32), "abc")
    other = settings_from_args(args(backbone="r2plus1d_18"), recorded)
    assert (other.backbone, other.crop, other.resize, other.weights) == (
        "r2plus1d_18", None, None, None)
    assert (other.num_frames, other.stride) == (8, 4)
    preset = settings_from_args(args(preset="activitynet_r2plus1d", stride=8), recorded)
    assert (preset.backbone, preset.fps, preset.num_frames, preset.stride, preset.crop) == (
        "r2plus1d_18", 15.0, 16, 8, None)
    with pytest.raises(ValueError, match="pass --preset NAME"):
        settings_from_args(args(num_frames=8))

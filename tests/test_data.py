"""pytal.data: timestamps <-> steps, FeatureDataset modes (THUMOS / ActivityNet / multi-label),
training crops, label ids, collate, and the error messages."""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
import torch

from pytal.data import (AnnotationError, FeatureDataset, FeatureGrid, load_annotations,
                        load_features, resolve_labels, seconds_to_steps, steps_to_seconds)
from pytal.data.batching import collate
from pytal.io.annotations import load_instances
from pytal.data.crop import clip_to_window, crop_length, random_crop

FPS, STRIDE, FRAMES = 30.0, 4, 16
ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "pytal", "resources")
THUMOS = os.path.join(ANNOTATIONS, "thumos14.json")
ANET = os.path.join(ANNOTATIONS, "activitynet13.json.gz")


def write(tmp_path, database: dict, lengths: dict | None = None, dim: int = 8,
          ext: str = ".npy", default_fps: float = FPS) -> tuple[str, str]:
    """Annotation file + features; a video's length defaults to the one its duration implies."""
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"version": "t", "database": database}))
    feat_dir = tmp_path / "feats"
    feat_dir.mkdir(exist_ok=True)
    for i, (video_id, entry) in enumerate(database.items()):
        grid = FeatureGrid(entry.get("fps", default_fps), STRIDE, FRAMES)
        length = (lengths or {}).get(video_id, grid.num_features(entry["duration"]))
        feats = np.arange(length * dim, dtype=np.float32).reshape(length, dim) + 1000 * i
        if ext == ".npy":
            np.save(feat_dir / f"{video_id}.npy", feats)
        else:
            torch.save(torch.from_numpy(feats), feat_dir / f"{video_id}.pt")
    return str(ann), str(feat_dir)


def video(subset="train", duration=60.0, anns=(), **extra) -> dict:
    return {"subset": subset, "duration": duration,
            "annotations": [{"segment": [s, e], "label": label} for s, e, label in anns], **extra}


DB = {
    "a": video(anns=[(10.0, 20.0, "jump"), (30.0, 31.0, "run")], fps=30.0),
    "b": video(duration=33.3, anns=[(1.0, 30.0, "run")]),
    "c": video(subset="test", anns=[(5.0, 6.0, "jump")]),
}


# ------------------------------------------------------------------------------------- timing

def test_feature_grid_conversions():
    grid = FeatureGrid(FPS, STRIDE, FRAMES)
    # feature i covers frames [4i, 4i + 16): centred at (4i + 8) / 30 s
    assert grid.to_seconds(0) == pytest.approx(8 / 30)
    assert grid.to_seconds(10) == pytest.approx(48 / 30)
    assert grid.to_steps(48 / 30) == pytest.approx(10)
    x = np.linspace(-3, 500, 17)
    np.testing.assert_allclose(grid.to_steps(grid.to_seconds(x)), x, atol=1e-9)
    t = torch.tensor([0.0, 12.5])
    assert torch.allclose(steps_to_seconds(seconds_to_steps(t, fps=FPS, feat_stride=STRIDE,
                                                            num_frames=FRAMES),
                                           fps=FPS, feat_stride=STRIDE, num_frames=FRAMES), t)
    assert grid.num_features(60.0) == (1800 - 16) // 4 + 1
    assert grid.num_features(0.1) == 1
    assert grid.covered_seconds(grid.num_features(60.0)) == pytest.approx(60.0)


def test_fixed_length_grid_is_derived_from_duration():
    grid = FeatureGrid.fixed_length(duration=50.0, length=100, fps=25.0)
    assert grid.feat_stride == grid.num_frames == pytest.approx(12.5)
    assert grid.to_seconds(0) == pytest.approx(0.25)                # (i + 0.5) * 50 / 100
    assert grid.to_seconds(99) == pytest.approx(49.75)
    assert grid.to_steps(50.0) == pytest.approx(99.5)
    with pytest.raises(ValueError, match="fps"):
        FeatureGrid(0, 4, 16)


# ----------------------------------------------------------------------------- THUMOS mode

def test_thumos_style_items(tmp_path):
    ann, feats = write(tmp_path, DB, default_fps=25.0)
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=25.0)
    assert len(ds) == 2 and ds.video_ids == ["a", "b"]
    item = ds[0]
    assert set(item) == {"video_id", "feats", "segments", "labels", "fps", "duration",
                         "feat_stride", "feat_num_frames"}
    assert item["feats"].dtype == torch.float32 and item["feats"].shape == (8, 447)
    assert item["feats"][3, 0] == 3.0 and item["feats"][0, 1] == 8.0      # (T, C) -> (C, T)
    grid = FeatureGrid(30.0, STRIDE, FRAMES)
    expected = grid.to_steps(np.array([[10.0, 20.0], [30.0, 31.0]]))
    assert item["segments"].dtype == torch.float32
    np.testing.assert_allclose(item["segments"].numpy(), expected, rtol=1e-6)
    assert item["labels"].tolist() == [0, 1]                # sorted names: jump=0, run=1
    assert (item["fps"], item["duration"], item["feat_stride"], item["feat_num_frames"]) == \
        (30.0, 60.0, 4.0, 16.0)
    assert ds[1]["fps"] == 25.0                              # no 'fps' in the file: default_fps
    assert ds.label_source == "sorted_names" and ds.class_names == ["jump", "run"]


def test_pt_features_and_multiple_subsets(tmp_path):
    ann, feats = write(tmp_path, DB, ext=".pt")
    ds = FeatureDataset(ann, feats, subset=["train", "test"], feat_stride=STRIDE,
                        num_frames=FRAMES, default_fps=30.0, file_ext=".pt")
    assert ds.video_ids == ["a", "b", "c"] and ds[2]["feats"].shape[0] == 8
    assert load_features(f"{feats}/a.pt").shape == (8, 447)


def test_training_crop_to_max_seq_len(tmp_path):
    ann, feats = write(tmp_path, DB)
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=FPS, training=True, max_seq_len=128, trunc_thresh=0.5,
                        generator=torch.Generator().manual_seed(0))
    offset = FRAMES / STRIDE / 2
    full = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                          default_fps=FPS)[0]
    for _ in range(10):
        item = ds[0]
        assert item["feats"].shape == (8, 128)
        start = int(item["feats"][0, 0].item()) // 8          # feature values encode the step
        assert torch.equal(item["feats"], full["feats"][:, start:start + 128])
        segs = item["segments"]
        assert len(segs) >= 1 and len(segs) == len(item["labels"])
        assert (segs[:, 0] >= -offset).all() and (segs[:, 1] <= 128 + offset).all()
        # every kept segment is the clipped original, shifted by the crop start
        for seg in segs + start:
            assert any(abs(seg[0] - max(o[0], start - offset)) < 1e-4 and
                       abs(seg[1] - min(o[1], start + 128 + offset)) < 1e-4
                       for o in full["segments"])
    # same generator seed -> same crops
    a, b = (FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                           default_fps=FPS, training=True, max_seq_len=64,
                           generator=torch.Generator().manual_seed(1)) for _ in range(2))
    assert all(torch.equal(a[0]["feats"], b[0]["feats"]) for _ in range(3))


def test_crop_helpers():
    segs = torch.tensor([[0.0, 10.0], [8.0, 30.0], [50.0, 50.0]])
    clipped, keep = clip_to_window(segs, 5, 20, offset=2.0, trunc_thresh=0.5)
    assert keep.tolist() == [True, True, False]              # 7/10 and 14/22 kept; empty dropped
    assert clipped[0].tolist() == [-2.0, 5.0] and clipped[1].tolist() == [3.0, 17.0]
    assert crop_length(100, max_seq_len=64, crop_ratio=None) == 64
    assert crop_length(50, max_seq_len=64, crop_ratio=None) == 50
    g = torch.Generator().manual_seed(0)
    lengths = {crop_length(50, max_seq_len=64, crop_ratio=(0.5, 0.8), generator=g) for _ in range(50)}
    assert min(lengths) >= 25 and max(lengths) <= 40 and len(lengths) > 3
    start, kept, keep = random_crop(100, torch.tensor([[60.0, 70.0]]), window=20, offset=0.0,
                                    trunc_thresh=1.0, generator=g)
    assert keep.tolist() == [True] and 50 <= start <= 60 and kept.tolist() == [[60 - start, 70 - start]]


def test_training_full_window_clips_and_drops(tmp_path):
    db = {"a": video(duration=10.0, anns=[(2.0, 4.0, "x"), (9.0, 30.0, "x"), (5.0, 5.0, "x")])}
    ann, feats = write(tmp_path, db)
    with pytest.warns(UserWarning, match=r"1 segments of subset \['train'\] reach past their "
                      r"video's \[0, duration\] and 0 lie wholly outside it \(first: video "
                      r"'a': \[9, 30\] s, duration 10 s\); training clips"):
        item = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE,
                              num_frames=FRAMES, default_fps=FPS, training=True)[0]
    # the action running far past the end keeps < 50% and the empty one is dropped
    assert len(item["segments"]) == 1
    evaluation = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE,
                                num_frames=FRAMES, default_fps=FPS)[0]
    assert len(evaluation["segments"]) == 3                  # evaluation items keep everything


# ------------------------------------------------------------------------ ActivityNet mode

def test_activitynet_style_resize(tmp_path):
    ann, feats = write(tmp_path, DB)
    ds = FeatureDataset(ann, feats, subset="train", resize_length=32, default_fps=30.0)
    item = ds[1]                                             # duration 33.3 s
    assert item["feats"].shape == (8, 32)
    assert item["feat_stride"] == item["feat_num_frames"] == pytest.approx(33.3 * 30 / 32)
    # step i is centred at (i + 0.5) * duration / L
    np.testing.assert_allclose(item["segments"].numpy(),
                               [[1.0 / 33.3 * 32 - 0.5, 30.0 / 33.3 * 32 - 0.5]], rtol=1e-5)
    raw = load_features(f"{feats}/b.npy")
    resized = torch.nn.functional.interpolate(raw[None], size=32, mode="linear",
                                              align_corners=False)[0]
    assert torch.allclose(item["feats"], resized)


def test_multi_label_and_overlapping(tmp_path):
    db = {"v": {"subset": "train", "duration": 20.0, "fps": 30.0, "annotations": [
        {"segment": [1.0, 5.0], "label": ["cut", "hold"]},
        {"segment": [2.0, 9.0], "label": "stir"}]}}
    ann, feats = write(tmp_path, db)
    item = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES)[0]
    assert item["labels"].tolist() == [0, 1, 2]
    assert torch.equal(item["segments"][0], item["segments"][1])


# ------------------------------------------------------------------------------- label ids

def test_label_ids_rules(tmp_path):
    with_ids = {"database": {"v": {"subset": "s", "duration": 5.0, "annotations": [
        {"segment": [0, 1], "label": "b", "label_id": 7},
        {"segment": [1, 2], "label": "a", "label_id": 2}]}}}
    names, source = resolve_labels(load_annotations(with_ids))
    assert source == "label_id" and names[7] == "b" and names[2] == "a" and len(names) == 8
    ann, feats = write(tmp_path, with_ids["database"])
    item = FeatureDataset(ann, feats, subset="s", feat_stride=STRIDE, num_frames=FRAMES,
                          default_fps=FPS)[0]
    assert item["labels"].tolist() == [7, 2]

    partial = json.loads(json.dumps(with_ids))
    del partial["database"]["v"]["annotations"][1]["label_id"]              # not every annotation has one
    assert resolve_labels(load_annotations(partial)) == (["a", "b"], "sorted_names")
    assert resolve_labels(load_annotations(partial), ["b", "a", "c"]) == (["b", "a", "c"], "classes")
    with pytest.raises(AnnotationError, match="not in the given classes: \\['a'\\]"):
        resolve_labels(load_annotations(partial), ["b"])
    with pytest.raises(AnnotationError, match="disagree"):
        resolve_labels(load_annotations(with_ids), ["a", "b"])
    clash = json.loads(json.dumps(with_ids))
    clash["database"]["v"]["annotations"][1]["label_id"] = 7
    with pytest.raises(AnnotationError, match="label_id 7 is used for both"):
        resolve_labels(load_annotations(clash))


# ----------------------------------------------------------------------------------- collate

def test_collate_pads_and_masks(tmp_path):
    ann, feats = write(tmp_path, DB)
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=FPS)
    items = [ds[0], ds[1]]
    batch = collate(items)
    lengths = [items[0]["feats"].shape[1], items[1]["feats"].shape[1]]
    assert batch["feats"].shape == (2, 8, max(lengths))
    assert batch["masks"].shape == (2, 1, max(lengths)) and batch["masks"].dtype == torch.bool
    assert batch["masks"].sum(-1).flatten().tolist() == lengths
    assert torch.equal(batch["feats"][1, :, :lengths[1]], items[1]["feats"])
    assert (batch["feats"][1, :, lengths[1]:] == 0).all()
    assert batch["video_id"] == ["a", "b"] and len(batch["segments"]) == 2
    assert batch["labels"][0].tolist() == [0, 1] and batch["fps"] == [30.0, 30.0]
    assert collate(items, multiple=32)["feats"].shape[-1] == 448
    assert collate(items, length=512)["masks"].shape[-1] == 512
    with pytest.raises(ValueError, match="does not fit the fixed length 100"):
        collate(items, length=100)
    loader = torch.utils.data.DataLoader(ds, batch_size=2,
                                         collate_fn=functools.partial(collate, multiple=64))
    assert next(iter(loader))["feats"].shape == (2, 8, 448)


# ------------------------------------------------------------------------------------ errors

def test_missing_feature_file_names_the_path(tmp_path):
    ann, feats = write(tmp_path, DB)
    (tmp_path / "feats" / "b.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"feats/b\.npy.*1 of 2 videos"):
        FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                       default_fps=FPS)
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=FPS, skip_missing=True)
    assert ds.video_ids == ["a"]


def test_length_disagreeing_with_duration(tmp_path):
    ann, feats = write(tmp_path, DB, lengths={"a": 200})
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=FPS)
    with pytest.raises(ValueError, match=r"a\.npy: 200 features, but duration 60\.000 s .* about 447"):
        ds[0]
    ds = FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES,
                        default_fps=FPS, length_tolerance=None)
    assert ds[0]["feats"].shape[1] == 200


def test_subset_and_argument_errors(tmp_path):
    ann, feats = write(tmp_path, DB)
    kw = dict(feat_stride=STRIDE, num_frames=FRAMES, default_fps=FPS)
    with pytest.raises(AnnotationError, match="unknown subset 'val'; known subsets: \\['test', 'train'\\]"):
        FeatureDataset(ann, feats, subset="val", **kw)
    with pytest.raises(ValueError, match="subset is empty"):
        FeatureDataset(ann, feats, subset=[], **kw)
    with pytest.raises(ValueError, match="feat_stride and num_frames are required"):
        FeatureDataset(ann, feats, subset="train")
    with pytest.raises(AnnotationError, match="'b' has no field 'fps' and default_fps is not set"):
        FeatureDataset(ann, feats, subset="train", feat_stride=STRIDE, num_frames=FRAMES)
    with pytest.raises(ValueError, match="input_dim=16"):
        FeatureDataset(ann, feats, subset="train", input_dim=16, **kw)[0]
    (tmp_path / "unlabeled").mkdir()
    ann2, feats2 = write(tmp_path / "unlabeled", {"u": video(subset="train")})
    with pytest.raises(AnnotationError, match="no annotated video to train on"):
        FeatureDataset(ann2, feats2, subset="train", training=True, **kw)


@pytest.mark.parametrize("entry,message", [
    ({"duration": 5.0, "annotations": []}, "field 'subset' must be a string"),
    ({"subset": "s", "annotations": []}, "field 'duration' must be a positive number"),
    ({"subset": "s", "duration": -1, "annotations": []}, "field 'duration'"),
    ({"subset": "s", "duration": 5.0, "fps": "x", "annotations": []}, "field 'fps'"),
    ({"subset": "s", "duration": 5.0, "annotations": {}}, "field 'annotations' must be a list"),
    ({"subset": "s", "duration": 5.0, "annotations": [{"label": "a"}]},
     "annotation 0: field 'segment' must be \\[start, end\\]"),
    ({"subset": "s", "duration": 5.0, "annotations": [{"segment": [3, 1], "label": "a"}]},
     "end >= start"),
    ({"subset": "s", "duration": 5.0, "annotations": [{"segment": [1, 3]}]},
     "field 'label' must be a string"),
    ({"subset": "s", "duration": 5.0, "annotations": [{"segment": [1, 3], "label": "a",
                                                       "label_id": -2}]}, "field 'label_id'"),
])
def test_malformed_annotations(entry, message):
    with pytest.raises(AnnotationError, match=f"video 'v'.*{message}"):
        load_annotations({"database": {"v": entry}})


def test_malformed_top_level(tmp_path):
    with pytest.raises(AnnotationError, match="missing top-level field 'database'"):
        load_annotations({"videos": {}})
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*nope.json"):
        load_annotations(tmp_path / "nope.json")


def test_real_annotation_files_load():
    thumos = load_annotations(THUMOS)
    assert thumos.subsets == ["test", "validation"] and len(thumos.label_names) == 20
    assert resolve_labels(thumos)[1] == "sorted_names"
    anet = load_annotations(ANET, subsets=["validation"])
    assert len(anet.videos) == 4728 and all(v.fps is None for v in anet.videos.values())


def test_load_instances_rows_per_label_and_video():
    db = {"a": {"subset": "s", "annotations": [{"segment": [1, 2], "label": "x"},
                                                {"segment": [3.5, 4], "label": ["y", "z"]}]},
          "b": {"subset": "s", "annotations": []},
          "c": {"subset": "t", "annotations": [{"segment": "bad"}]},
          "d": {"subset": "s", "annotations": ({"segment": (0, 1), "label": "x"},)}}
    table = load_instances({"database": db}, "s")
    assert table.video_ids == ["a", "b", "d"] and table.labels == ["x", "y", "z", "x"]
    assert table.video.dtype == np.int64 and table.video.tolist() == [0, 0, 0, 2]
    assert table.segments.tolist() == [[1, 2], [3.5, 4], [3.5, 4], [0, 1]]
    with pytest.raises(AnnotationError, match="video 'c', annotation 0: field 'segment'"):
        load_instances({"database": db}, "t")


def test_public_names_stay_themselves_after_every_submodule_is_imported():
    """No submodule of pytal.data shares a name with what the package exports: importing it
    would replace the exported function (``from pytal.data import collate``) by the module."""
    import importlib
    import pkgutil
    import types

    import pytal.data
    for info in pkgutil.iter_modules(pytal.data.__path__):
        importlib.import_module(f"pytal.data.{info.name}")
    for name in pytal.data.__all__:
        if name != "synthetic":
            assert not isinstance(getattr(pytal.data, name), types.ModuleType), name
    from pytal.data import collate as public
    assert callable(public) and public.__name__ == "collate"

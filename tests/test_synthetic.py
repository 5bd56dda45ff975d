"""pytal.data.synthetic: determinism, the on-disk format, layouts from the real annotation
files, and a learnable signal."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pytal.data import FeatureGrid, load_annotations
from pytal.data.synthetic import SignalConfig, write_dataset
from pytal.data.synthetic.signal import FeatureSynthesizer

ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "pytal", "resources")
THUMOS = os.path.join(ANNOTATIONS, "thumos14.json")
ANET = os.path.join(ANNOTATIONS, "activitynet13.json.gz")

SMALL = dict(num_videos=6, num_classes=4, feat_dim=16, duration_range=(20.0, 40.0))


def read_all(ds) -> tuple[dict, dict]:
    with open(ds.annotation_file) as f:
        annotations = json.load(f)
    feats = {v: np.load(os.path.join(ds.feature_dir, v + ".npy"))
             for videos in ds.subsets.values() for v in videos}
    return annotations, feats


def test_deterministic_from_seed(tmp_path):
    a = write_dataset(tmp_path / "a", seed=3, **SMALL)
    b = write_dataset(tmp_path / "b", seed=3, **SMALL)
    c = write_dataset(tmp_path / "c", seed=4, **SMALL)
    ann_a, feats_a = read_all(a)
    ann_b, feats_b = read_all(b)
    ann_c, feats_c = read_all(c)
    assert ann_a == ann_b and feats_a.keys() == feats_b.keys()
    assert all(np.array_equal(feats_a[v], feats_b[v]) for v in feats_a)
    assert ann_a != ann_c


def test_random_layout_format_and_dataset(tmp_path):
    ds = write_dataset(tmp_path, seed=0, overlap_prob=0.5, multi_label_prob=0.5,
                       actions_per_video=(4, 8), **SMALL)
    assert ds.class_names == ["class_00", "class_01", "class_02", "class_03"]
    assert set(ds.subsets) == {"training", "validation"}
    assert sum(map(len, ds.subsets.values())) == 6 and len(ds.subsets["validation"]) == 2
    annotations, feats = read_all(ds)
    db = annotations["database"]
    for video_id, entry in db.items():
        grid = FeatureGrid(entry["fps"], ds.feat_stride, ds.num_frames)
        assert feats[video_id].dtype == np.float32
        assert feats[video_id].shape == (grid.num_features(entry["duration"]), 16)
        for a in entry["annotations"]:
            assert 0 <= a["segment"][0] <= a["segment"][1] <= entry["duration"]
            assert ds.class_names[a["label_id"]] == a["label"]
    segs = [tuple(a["segment"]) for e in db.values() for a in e["annotations"]]
    assert len(segs) > len(set(segs)), "multi_label_prob=0.5 gives repeated segments"
    assert any(a["segment"][0] < b["segment"][1] and b["segment"][0] < a["segment"][1]
               and a["segment"] != b["segment"]
               for e in db.values() for a in e["annotations"] for b in e["annotations"]
               if a is not b), "overlap_prob=0.5 gives overlapping actions"
    train = ds.dataset("training", training=True, max_seq_len=128)
    assert train.label_source == "label_id" and train[0]["feats"].shape[0] == 16
    assert ds.config_overrides()["dataset.num_classes"] == 4


def test_signal_is_learnable():
    """Projections on the class prototypes separate actions from background."""
    from pytal.data.synthetic.layout import VideoSpec
    config = SignalConfig()
    synth = FeatureSynthesizer(5, 64, noise_window=4, config=config, seed=0)
    spec = VideoSpec("v", "s", 120.0, 30.0, np.array([[10.0, 40.0], [60.0, 61.0], [80.0, 110.0]]),
                     np.array([0, 3, 2]))
    grid = FeatureGrid(30.0, 4, 16)
    feats = synth.features(spec, grid, grid.num_features(120.0), np.random.default_rng(0))
    proj = feats @ synth.prototypes.T                                  # (T, K)
    inside = slice(int(grid.to_steps(15.0)), int(grid.to_steps(35.0)))
    background = slice(int(grid.to_steps(45.0)), int(grid.to_steps(55.0)))
    assert proj[inside, 0].mean() > 0.6 * config.action
    assert abs(proj[background, 0].mean()) < 1.0
    # the onset pattern peaks at the action's start
    onset = feats @ synth.onset
    start = grid.to_steps(10.0)
    assert abs(int(np.argmax(onset[int(start) - 10:int(start) + 10])) + int(start) - 10 - start) <= 2
    assert 0.5 < feats[background].std() < 2.0


def test_thumos14_layout(tmp_path):
    ds = write_dataset(tmp_path, feat_dim=8, seed=0, layout=THUMOS, max_videos=3)
    real = load_annotations(THUMOS)
    assert ds.class_names == real.label_names and len(ds.class_names) == 20
    assert {k: len(v) for k, v in ds.subsets.items()} == {"test": 3, "validation": 3}
    annotations, feats = read_all(ds)
    for video_id, entry in annotations["database"].items():
        original = real.videos[video_id]
        assert entry["duration"] == original.duration and entry["fps"] == original.fps
        assert [a["segment"] for a in entry["annotations"]] == original.segments.tolist()
        assert [a["label"] for a in entry["annotations"]] == list(original.label_names)
        grid = FeatureGrid(original.fps, 4, 16)
        assert feats[video_id].shape == (grid.num_features(original.duration), 8)
    item = ds.dataset("test")[0]
    assert item["labels"].tolist() == [ds.class_names.index(n)
                                       for n in real.videos[item["video_id"]].label_names]


def test_activitynet_layout_uses_default_fps(tmp_path):
    ds = write_dataset(tmp_path, feat_dim=8, seed=0, layout=ANET, subsets=["validation"],
                       max_videos=4, feat_stride=16, num_frames=16, fps=15.0)
    assert list(ds.subsets) == ["validation"] and len(ds.class_names) == 200
    annotations, feats = read_all(ds)
    assert all(e["fps"] == 15.0 for e in annotations["database"].values())
    items = ds.dataset("validation", resize_length=32)
    assert items[0]["feats"].shape == (8, 32)


def test_layout_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_videos / num_classes do not apply"):
        write_dataset(tmp_path, num_videos=3, layout=THUMOS)
    with pytest.raises(ValueError, match="unknown subset 'train'"):
        write_dataset(tmp_path, layout=THUMOS, subsets=["train"], max_videos=1)


def test_reuse_skips_identical_rewrite(tmp_path):
    first = write_dataset(tmp_path, seed=0, **SMALL)
    path = os.path.join(first.feature_dir, first.subsets["training"][0] + ".npy")
    stamp = os.stat(path).st_mtime_ns
    again = write_dataset(tmp_path, seed=0, reuse=True, **SMALL)
    assert again == first and os.stat(path).st_mtime_ns == stamp


def test_difficulty_matched_filter_baseline(tmp_path):
    """A trivial detector (class means from training, thresholded projections) finds the
    actions but stays far from perfect: the signal is learnable and not trivial."""
    from pytal.evaluation import evaluate
    ds = write_dataset(tmp_path, num_videos=48, num_classes=6, feat_dim=64, seed=0,
                       duration_range=(30.0, 90.0))
    train, val = ds.dataset("training"), ds.dataset("validation")
    feats, masks = [], []
    for item in train:
        mask = np.zeros((item["feats"].shape[1], ds.num_classes), bool)
        for (s, e), c in zip(item["segments"].tolist(), item["labels"].tolist()):
            mask[max(0, int(np.ceil(s))):int(np.floor(e)) + 1, c] = True
        feats.append(item["feats"].t().numpy())
        masks.append(mask)
    feats, masks = np.concatenate(feats), np.concatenate(masks)
    background = feats[~masks.any(1)].mean(0)
    means = np.stack([feats[masks[:, c]].mean(0) - background for c in range(ds.num_classes)])
    level = np.einsum("kc,kc->k", means, means)
    results = {}
    for i, item in enumerate(val):
        score = (item["feats"].t().numpy() - background) @ means.T / level
        grid, dets = val.grid(i), []
        for c in range(ds.num_classes):
            edges = np.flatnonzero(np.diff(np.r_[0, (score[:, c] > 0.5).astype(int), 0]))
            for s, e in zip(edges[::2], edges[1::2]):
                dets.append({"label": ds.class_names[c], "score": float(score[s:e, c].mean()),
                             "segment": [float(grid.to_seconds(s - 0.5)),
                                         float(grid.to_seconds(e - 0.5))]})
        results[item["video_id"]] = dets
    m_ap = evaluate(ds.annotation_file, {"results": results}, subset="validation",
                    tiou_thresholds="thumos14")["average_mAP"]
    assert 0.05 < m_ap < 0.75, m_ap

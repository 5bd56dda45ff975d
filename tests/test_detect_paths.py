"""``CLTDRGMG.detect`` post-processing against ``pytal.postprocess.batched_nms`` run by hand on
the same candidates: each ``eval.nms_method``, class-agnostic NMS with and without segment
voting, voting ignored with multiclass NMS, ``duration_thresh``; and batched inference (``pytal
infer --batch-size``) against one video at a time.

The candidates are what ``detect`` returns with ``nms_method: none``; with NMS, the call that
``detect`` makes to ``batched_nms`` is recorded, its candidates are checked against those, and
``batched_nms`` is rerun on them with the settings written in this file. The metadata makes
the conversion to seconds a translation by 64 steps (fps 1, stride 1, 128 frames), so that no
segment is clipped at 0.
"""
from __future__ import annotations

import json
import sys

import pytest
import torch

from pytal.cli import main
from pytal.config import load_config
from pytal.data.synthetic import write_dataset
from pytal.models import build_model
import pytal.postprocess
from pytal.postprocess import batched_nms

TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64",
        "dataset.input_dim=8", "dataset.num_classes=3", "model.input_noise=0.0"]
# non-default values, so that a parameter that is not passed on changes the result
TEST = {"iou_threshold": 0.3, "nms_sigma": 0.4, "min_score": 0.02, "max_seg_num": 40,
        "duration_thresh": 0.0, "pre_nms_thresh": 0.001}
SHIFT = 64.0                                 # seconds = feature steps + SHIFT (see docstring)
LENGTHS = (64, 45)
SOFT_NMS_METHOD = {"soft": "gaussian", "linear": "linear", "hard": "hard"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(state=None, **test):
    overrides = TINY + [f"eval.{k}={v}" for k, v in {**TEST, **test}.items()]
    torch.manual_seed(0)
    model = build_model(load_config("cltdr_gmg_small", overrides)).eval()
    if state is not None:
        model.load_state_dict(state)
    return model


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    model = build()
    with torch.no_grad():                  # spread the scores: a freshly built head is flat
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.state_dict()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(3)
    T = max(LENGTHS)
    feats = torch.randn(len(LENGTHS), 8, T, generator=g)
    masks = torch.zeros(len(LENGTHS), 1, T, dtype=torch.bool)
    for i, n in enumerate(LENGTHS):
        masks[i, :, :n] = True
    meta = [dict(video_id=f"v{i}", fps=1.0, feat_stride=1, feat_num_frames=2 * SHIFT,
                 duration=1e6) for i in range(len(LENGTHS))]
    return feats, masks, meta


def run_detect(model, batch):
    feats, masks, meta = batch
    with torch.no_grad():
        return model.detect(feats, masks, meta)


def flatten(dets):
    """Per-video detections -> (segments, scores, labels, video index) of the whole batch."""
    segs = torch.cat([d["segments"] for d in dets])
    scores = torch.cat([d["scores"] for d in dets])
    labels = torch.cat([d["labels"] for d in dets])
    videos = torch.cat([torch.full((len(d["scores"]),), i, dtype=torch.long)
                        for i, d in enumerate(dets)])
    return segs, scores, labels, videos


@pytest.fixture(scope="module")
def candidates(weights, batch):
    cands = flatten(run_detect(build(weights, nms_method="none"), batch))
    assert len(cands[1]) > 4 * TEST["max_seg_num"]      # NMS and top-k have work to do
    assert len(torch.unique(cands[2])) == 3 and len(torch.unique(cands[3])) == 2
    return cands


class NMSCalls:
    """Records the candidates of every ``batched_nms`` call made by pytal's modules."""

    def __init__(self, monkeypatch):
        self.candidates = []
        real = pytal.postprocess.batched_nms

        def spy(segments, scores, labels, video_index=None, **kwargs):
            self.candidates.append((segments.clone(), scores.clone(), labels.clone(),
                                    video_index.clone()))
            return real(segments, scores, labels, video_index, **kwargs)

        for name, module in list(sys.modules.items()):
            if name.startswith("pytal") and getattr(module, "batched_nms", None) is real:
                monkeypatch.setattr(module, "batched_nms", spy)


def to_seconds(result):
    segs, scores, labels, videos = result
    return segs + SHIFT, scores, labels, videos


def assert_same_detections(got, want, tol=1e-6):
    g_segs, g_scores, g_labels, g_videos = got
    w_segs, w_scores, w_labels, w_videos = want
    assert torch.equal(g_videos, w_videos) and torch.equal(g_labels, w_labels)
    torch.testing.assert_close(g_scores, w_scores, rtol=tol, atol=tol)
    torch.testing.assert_close(g_segs, w_segs, rtol=tol, atol=10 * tol)


def detect_and_rerun(weights, batch, candidates, monkeypatch, *, method, multiclass, voting):
    """(detect's result, batched_nms rerun on the candidates detect passed to it)."""
    calls = NMSCalls(monkeypatch)
    model = build(weights, nms_method=method, multiclass_nms=multiclass, voting_thresh=voting)
    got = flatten(run_detect(model, batch))
    assert len(calls.candidates) == 1
    passed = calls.candidates[0]
    by_video = torch.argsort(passed[3], stable=True)      # detect returns them per video
    assert_same_detections(to_seconds(tuple(x[by_video] for x in passed)), candidates, tol=1e-5)
    want = batched_nms(*passed, iou_threshold=TEST["iou_threshold"], sigma=TEST["nms_sigma"],
                       min_score=TEST["min_score"], method=SOFT_NMS_METHOD[method],
                       multiclass=multiclass, voting_thresh=0.0 if multiclass else voting,
                       max_seg_num=TEST["max_seg_num"])
    return got, to_seconds(want)


@pytest.mark.parametrize("method", ["soft", "linear", "hard"])
@pytest.mark.parametrize("multiclass", [True, False])
def test_each_nms_method_equals_batched_nms(weights, batch, candidates, monkeypatch, method,
                                            multiclass):
    got, want = detect_and_rerun(weights, batch, candidates, monkeypatch, method=method,
                                 multiclass=multiclass, voting=0.0)
    assert_same_detections(got, want)
    assert 20 < len(want[1]) <= 2 * TEST["max_seg_num"] < len(candidates[1])


def test_methods_give_different_detections(weights, batch):
    results = [flatten(run_detect(build(weights, nms_method=m), batch))[1]
               for m in ("soft", "linear", "hard")]
    for i in range(3):
        for j in range(i + 1, 3):
            assert results[i].shape != results[j].shape or not torch.allclose(results[i], results[j])


@pytest.mark.parametrize("voting", [0.5, 0.8])
def test_class_agnostic_voting_equals_batched_nms(weights, batch, candidates, monkeypatch,
                                                   voting):
    got, want = detect_and_rerun(weights, batch, candidates, monkeypatch, method="soft",
                                 multiclass=False, voting=voting)
    assert_same_detections(got, want)
    unvoted = flatten(run_detect(build(weights, nms_method="soft", multiclass_nms=False,
                                       voting_thresh=0.0), batch))
    assert torch.equal(got[1], unvoted[1])                    # voting moves segments only
    assert (got[0] - unvoted[0]).abs().max() > 1e-3           # ... and it does move them


def test_voting_is_ignored_with_multiclass_nms(weights, batch):
    with_voting = flatten(run_detect(build(weights, multiclass_nms=True, voting_thresh=0.7), batch))
    without = flatten(run_detect(build(weights, multiclass_nms=True, voting_thresh=0.0), batch))
    assert_same_detections(with_voting, without, tol=0)


@pytest.mark.parametrize("thresh", [1.0, 4.0])
def test_duration_thresh_drops_short_candidates(weights, batch, candidates, thresh):
    got = flatten(run_detect(build(weights, nms_method="none", duration_thresh=thresh), batch))
    segs = candidates[0]
    lengths = segs[:, 1] - segs[:, 0]                      # feature steps = seconds here
    assert not ((lengths - thresh).abs() < 1e-4).any()     # no length too close to call
    longer = lengths > thresh
    assert 0 < int(longer.sum()) < len(longer)
    want = tuple(x[longer] for x in candidates)
    assert_same_detections(got, want, tol=1e-5)


# ------------------------------------------------------------------ batched inference (CLI)

def test_infer_batch_size_equals_one_video_at_a_time(tmp_path):
    ds = write_dataset(tmp_path / "data", num_videos=6, num_classes=3, feat_dim=16, seed=4,
                       duration_range=(8.0, 20.0), action_seconds=(1.0, 5.0))
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "train.epochs=1", "train.warmup_epochs=0", "train.batch_size=2",
                  *TINY[:-3], "dataset.max_seq_len=160", "eval.max_seg_num=30"]
    run = tmp_path / "run"
    assert main(["train", "cltdr_gmg_small", "--output", str(run), "--no-progress",
                 "--override", *overrides]) == 0
    outputs = {}
    for size in (1, 4):
        out = tmp_path / f"det{size}.json"
        assert main(["infer", "--ckpt", str(run / "best.pt"), "--features", ds.feature_dir,
                     "--out", str(out), "--batch-size", str(size)]) == 0
        outputs[size] = json.loads(out.read_text())["results"]
    single, batched = outputs[1], outputs[4]
    assert set(single) == set(batched) and len(single) == 6
    assert sum(len(v) for v in single.values()) > 0
    for vid in single:
        a, b = single[vid], batched[vid]
        assert [e["label"] for e in a] == [e["label"] for e in b], vid
        for x, y in zip(a, b):
            assert x["score"] == pytest.approx(y["score"], abs=1e-5), vid
            assert x["segment"] == pytest.approx(y["segment"], abs=1e-4), vid

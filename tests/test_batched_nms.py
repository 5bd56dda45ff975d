"""pytal.postprocess.batched_nms against an explicit per-video, per-class loop (the way
ActionFormer-style code post-processes one video at a time), and its voting."""
from __future__ import annotations

import warnings

import pytest
import torch

import pytal.postprocess as postprocess
from pytal.ops.reference.soft_nms import soft_nms as reference_soft_nms
from pytal.postprocess import batched_nms


def candidates(num_videos, per_video, num_classes, *, seed):
    g = torch.Generator().manual_seed(seed)
    n = num_videos * per_video
    start = torch.rand(n, generator=g) * 60
    segments = torch.stack([start, start + 0.5 + torch.rand(n, generator=g) * 10], 1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    videos = torch.arange(num_videos).repeat_interleave(per_video)
    perm = torch.randperm(n, generator=g)  # videos interleaved in the input
    return segments[perm], scores[perm], labels[perm], videos[perm]


def loop_nms(segments, scores, labels, *, multiclass, max_seg_num, voting_thresh=0.0,
             voting_weight="score", **nms):
    """One video: per class (or all together) reference Soft-NMS, optional voting, top-k."""
    out_seg, out_score, out_label = [], [], []
    classes = torch.unique(labels).tolist() if multiclass else [None]
    for c in classes:
        idx = (labels == c).nonzero().squeeze(1) if c is not None else torch.arange(len(labels))
        keep, s = reference_soft_nms(segments[idx], scores[idx], **nms)
        seg = segments[idx][keep]
        if not multiclass and voting_thresh > 0:
            seg = vote_by_hand(seg, segments, scores, voting_thresh, voting_weight)
        out_seg.append(seg)
        out_score.append(s)
        out_label.append(labels[idx][keep])
    seg, score, label = torch.cat(out_seg), torch.cat(out_score), torch.cat(out_label)
    order = torch.argsort(score, descending=True, stable=True)[:max_seg_num]
    return seg[order], score[order], label[order]


def vote_by_hand(kept, all_segments, all_scores, thresh, weight):
    out = []
    for s, e in kept.tolist():
        num, den = torch.zeros(2), 0.0
        for (cs, ce), cscore in zip(all_segments.tolist(), all_scores.tolist()):
            inter = max(0.0, min(e, ce) - max(s, cs))
            iou = inter / ((e - s) + (ce - cs) - inter)
            if iou >= thresh:
                w = cscore * (iou if weight == "score_iou" else 1.0)
                num += w * torch.tensor([cs, ce])
                den += w
        out.append(num / den)
    return torch.stack(out)


NMS = dict(iou_threshold=0.1, sigma=0.5, min_score=1e-3, method="gaussian")


@pytest.mark.parametrize("backend", [None, "reference"])
def test_multiclass_batch_equals_per_video_loop(backend):
    segments, scores, labels, videos = candidates(6, 150, 5, seed=0)
    out = batched_nms(segments, scores, labels, videos, max_seg_num=40, backend=backend, **NMS)
    assert len(out) == 4
    for v in range(6):
        m = videos == v
        expected = loop_nms(segments[m], scores[m], labels[m], multiclass=True, max_seg_num=40,
                            max_per_group=-1, **NMS)
        got = [t[out[3] == v] for t in out[:3]]
        assert torch.equal(got[0], expected[0])
        torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=0)
        assert torch.equal(got[2], expected[2])
    assert (out[3][1:] >= out[3][:-1]).all()


def test_single_video_returns_three_tensors():
    segments, scores, labels, _ = candidates(1, 200, 4, seed=1)
    out = batched_nms(segments, scores, labels, max_seg_num=30, **NMS)
    assert len(out) == 3
    expected = loop_nms(segments, scores, labels, multiclass=True, max_seg_num=30,
                        max_per_group=-1, **NMS)
    assert torch.equal(out[0], expected[0]) and torch.equal(out[2], expected[2])
    assert len(out[0]) == 30 and (out[1][1:] <= out[1][:-1]).all()


@pytest.mark.parametrize("weight", ["score_iou", "score"])
def test_class_agnostic_with_voting_equals_loop(weight):
    segments, scores, labels, videos = candidates(3, 60, 3, seed=2)
    out = batched_nms(segments, scores, labels, videos, multiclass=False, voting_thresh=0.7,
                      voting_weight=weight, max_seg_num=25, **NMS)
    for v in range(3):
        m = videos == v
        expected = loop_nms(segments[m], scores[m], labels[m], multiclass=False, max_seg_num=25,
                            voting_thresh=0.7, voting_weight=weight, max_per_group=-1, **NMS)
        torch.testing.assert_close(out[0][out[3] == v], expected[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out[1][out[3] == v], expected[1], rtol=1e-6, atol=0)
        assert torch.equal(out[2][out[3] == v], expected[2])


def test_voting_moves_boundaries_towards_overlapping_candidates():
    segments = torch.tensor([[0.0, 10.0], [1.0, 11.0], [50.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.zeros(3, dtype=torch.long)
    plain = batched_nms(segments, scores, labels, multiclass=False, **NMS)
    voted = batched_nms(segments, scores, labels, multiclass=False, voting_thresh=0.5,
                        voting_weight="score_iou", **NMS)
    assert plain[0][0].tolist() == [0.0, 10.0]
    # iou(0-10, 1-11) = 9/11 >= 0.5: the first detection moves toward [1, 11]
    w0, w1 = 0.9 * 1.0, 0.8 * 9 / 11
    expected = (w0 * torch.tensor([0.0, 10.0]) + w1 * torch.tensor([1.0, 11.0])) / (w0 + w1)
    torch.testing.assert_close(voted[0][0], expected)
    assert voted[0][1].tolist() == [50.0, 60.0]  # an isolated detection stays put


def test_voting_with_multiclass_has_no_effect_and_warns_once(monkeypatch):
    monkeypatch.setattr(postprocess, "_warned_voting_with_multiclass", False)
    segments, scores, labels, videos = candidates(2, 50, 3, seed=3)
    plain = batched_nms(segments, scores, labels, videos, **NMS)
    with pytest.warns(UserWarning, match="no effect with multiclass=True"):
        voted = batched_nms(segments, scores, labels, videos, voting_thresh=0.7, **NMS)
    for a, b in zip(plain, voted):
        assert torch.equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batched_nms(segments, scores, labels, videos, voting_thresh=0.7, **NMS)


def test_max_seg_num_per_video_and_empty():
    segments, scores, labels, videos = candidates(4, 100, 2, seed=4)
    out = batched_nms(segments, scores, labels, videos, max_seg_num=7, **NMS)
    assert torch.bincount(out[3]).tolist() == [7, 7, 7, 7]
    empty = batched_nms(torch.empty(0, 2), torch.empty(0), torch.empty(0, dtype=torch.long),
                        torch.empty(0, dtype=torch.long))
    assert [t.shape[0] for t in empty] == [0, 0, 0, 0]


def test_hard_and_linear_methods():
    segments, scores, labels, videos = candidates(2, 80, 2, seed=5)
    for method in ("hard", "linear"):
        kwargs = dict(NMS, method=method, iou_threshold=0.4)
        out = batched_nms(segments, scores, labels, videos, max_seg_num=100, **kwargs)
        m = videos == 1
        expected = loop_nms(segments[m], scores[m], labels[m], multiclass=True, max_seg_num=100,
                            max_per_group=-1, **kwargs)
        assert torch.equal(out[0][out[3] == 1], expected[0])


def test_bad_arguments():
    segments, scores = torch.tensor([[0.0, 1.0]]), torch.tensor([0.5])
    with pytest.raises(ValueError, match="labels must be an int64 tensor"):
        batched_nms(segments, scores, torch.tensor([0], dtype=torch.int32))
    with pytest.raises(ValueError, match="video_index must be an int64 tensor"):
        batched_nms(segments, scores, torch.tensor([0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="voting_weight must be one of"):
        batched_nms(segments, scores, torch.tensor([0]), voting_weight="iou")
    with pytest.raises(ValueError, match="scores must be finite"):
        batched_nms(segments, torch.tensor([float("nan")]), torch.tensor([0]))


@pytest.mark.cuda
@pytest.mark.extension
def test_cuda_batch_matches_cpu():
    segments, scores, labels, videos = candidates(20, 300, 5, seed=6)
    cpu = batched_nms(segments, scores, labels, videos, **NMS)
    gpu = batched_nms(segments.cuda(), scores.cuda(), labels.cuda(), videos.cuda(), **NMS)
    assert gpu[0].device.type == "cuda"
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-6, atol=0)

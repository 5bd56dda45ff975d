"""pytest-benchmark microbenchmarks of soft_nms (run with ``pytest benchmarks/``)."""
import pytest
import torch

import pytal
from benchmarks.soft_nms import NMS, batch_groups, per_class_loop, thumos_like_candidates
from pytal.ops import soft_nms

pytestmark = pytest.mark.skipif(not pytal.ops.extension_loaded(), reason="pytal._C not built")


@pytest.fixture(scope="module")
def batch():
    segments, scores, labels, videos = thumos_like_candidates(20, 20, seed=1)
    return segments, scores, labels, videos, batch_groups(labels, videos, 20)


def per_video_top(batch, keep, new_scores, max_seg_num=200):
    """The batched call's selections as per_class_loop returns them: per video, the top
    ``max_seg_num`` by score."""
    segments, _, labels, videos, _ = batch
    out = []
    for v in torch.unique(videos).tolist():
        sel = (videos[keep] == v).nonzero().squeeze(1)
        order = torch.argsort(new_scores[sel], descending=True)[:max_seg_num]
        idx = keep[sel][order]
        out.append((segments[idx], new_scores[sel][order], labels[idx]))
    return out


def assert_same_results(got, want):
    assert len(got) == len(want)
    for (seg, score, label), (seg2, score2, label2) in zip(got, want):
        assert torch.equal(label.cpu(), label2.cpu())
        torch.testing.assert_close(score.cpu(), score2.cpu(), rtol=1e-6, atol=0)
        assert torch.equal(seg.cpu(), seg2.cpu())


@pytest.mark.parametrize("backend", ["extension"])
def test_soft_nms_batch(benchmark, batch, backend):
    segments, scores, labels, videos, groups = batch
    keep, new = benchmark(lambda: soft_nms(segments, scores, groups, backend=backend, **NMS))
    # both sides of the comparison agree: one batched call = the per-class loop
    assert_same_results(per_video_top(batch, keep, new),
                        per_class_loop(segments, scores, labels, videos))


def test_per_class_loop(benchmark, batch):
    segments, scores, labels, videos, groups = batch
    got = benchmark(lambda: per_class_loop(segments, scores, labels, videos))
    keep, new = soft_nms(segments, scores, groups, backend="reference", **NMS)
    assert_same_results(got, per_video_top(batch, keep, new))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_soft_nms_batch_cuda(benchmark, batch):
    segments, scores, _, _, groups = [t.cuda() for t in batch]

    def run():
        out = soft_nms(segments, scores, groups, backend="extension", **NMS)
        torch.cuda.synchronize()
        return out

    keep, new = benchmark(run)
    want = soft_nms(*[t.cpu() for t in (segments, scores, groups)], backend="extension", **NMS)
    assert torch.equal(keep.cpu(), want[0])
    torch.testing.assert_close(new.cpu(), want[1], rtol=1e-6, atol=0)

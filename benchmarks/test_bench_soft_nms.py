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


@pytest.mark.parametrize("backend", ["extension"])
def test_soft_nms_batch(benchmark, batch, backend):
    segments, scores, _, _, groups = batch
    benchmark(lambda: soft_nms(segments, scores, groups, backend=backend, **NMS))


def test_per_class_loop(benchmark, batch):
    segments, scores, labels, videos, _ = batch
    benchmark(lambda: per_class_loop(segments, scores, labels, videos))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_soft_nms_batch_cuda(benchmark, batch):
    segments, scores, _, _, groups = [t.cuda() for t in batch]

    def run():
        soft_nms(segments, scores, groups, backend="extension", **NMS)
        torch.cuda.synchronize()

    benchmark(run)

"""The comparison helpers of benchmarks.release_parity (they need no public code): detection
matching with the best unmatched rank, and the stable Tensor.sort it runs the public code with."""
from __future__ import annotations

import torch

from benchmarks.cltdr_gmg_release import match_detections
from benchmarks.release_parity import distinct_scores, stable_tensor_sort


def _dets(segments, scores, labels):
    return {"segments": torch.tensor(segments), "scores": torch.tensor(scores), "labels": torch.tensor(labels)}


def test_match_detections_reports_the_best_unmatched_rank_and_closest_differences():
    ref = _dets([[0.0, 1.0], [2.0, 3.0], [5.0, 6.0], [7.0, 9.0]], [0.9, 0.8, 0.7, 0.1], [0, 1, 0, 2])
    got = _dets([[0.0, 1.0004], [2.0, 3.0], [5.0, 6.0], [5.0, 6.0], [7.0, 9.0]],
                [0.9, 0.8, 0.7002, 0.7, 0.1], [0, 1, 0, 0, 1])
    m = match_detections(ref, got, top=10, atol=1e-3)
    assert (m.ref_count, m.got_count, m.checked, m.matched) == (4, 5, 4, 3)
    assert m.first_unmatched == 4 and abs(m.first_unmatched_score - 0.1) < 1e-6    # wrong label
    assert m.worst_score < 1e-6                 # [5, 6] matched to the exact twin, not the 0.7002 one
    assert abs(m.worst_boundary - 4e-4) < 1e-6
    m = match_detections(ref, got, top=2, atol=1e-3)
    assert (m.checked, m.matched, m.first_unmatched) == (2, 2, 0)


def test_stable_tensor_sort_orders_equal_values_by_index_and_restores_sort():
    x = torch.tensor([1.0, 0.0, 2.0, 1.0, 2.0] * 4000)
    original = torch.Tensor.sort
    with stable_tensor_sort():
        values, index = x.sort(descending=True)
    assert torch.Tensor.sort is original
    assert torch.equal(index, torch.sort(x, descending=True, stable=True).indices)
    with stable_tensor_sort(False):
        assert torch.Tensor.sort is original


def test_distinct_scores_moves_equal_scores_a_few_floats_down_keeping_the_order():
    scores = torch.tensor([1.0, 0.5, 1.0, 1.0, 0.5, 0.25])
    out = distinct_scores(scores)
    assert len(torch.unique(out)) == len(out)
    assert torch.equal(torch.argsort(out, descending=True), torch.tensor([0, 2, 3, 1, 4, 5]))
    assert out[0] == 1.0 and out[1] == 0.5 and out[5] == 0.25
    assert (scores - out).abs().max() < 1e-6

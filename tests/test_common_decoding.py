"""Shared inference helpers of pytal.models.common.decoding (candidate selection, segments, seconds)."""
from __future__ import annotations

import pytest
import torch

from pytal.models.common.decoding import (drop_short, feature_steps_to_seconds, segments_from_offsets,
                                          select_candidates)


def test_select_candidates_per_video_threshold_topk_and_mask():
    scores = torch.tensor([
        [[0.9, 0.1], [0.5, 0.7], [0.95, 0.2]],       # video 0: step 2 is padding
        [[0.0, 0.0], [0.3, 0.0], [0.0, 0.05]],
    ])
    valid = torch.tensor([[True, True, False], [True, True, True]])
    b, t, c, s = select_candidates(scores, valid, threshold=0.2, topk=2)
    assert b.tolist() == [0, 0, 1]
    assert t.tolist() == [0, 1, 1] and c.tolist() == [0, 1, 0]
    assert torch.allclose(s, torch.tensor([0.9, 0.7, 0.3]))
    b, t, c, s = select_candidates(scores, valid, threshold=0.001, topk=100)
    assert len(b) == 6                                    # every valid entry above 0.001
    with pytest.raises(ValueError, match="valid"):
        select_candidates(scores, valid[:, :2], threshold=0.1, topk=1)
    b, t, c, s = select_candidates(torch.zeros(2, 0, 3), torch.zeros(2, 0, dtype=torch.bool), threshold=0.1, topk=5)
    assert b.numel() == 0


def _select_by_stable_sort(scores, valid, threshold, topk):
    """select_candidates' documented result: per video, the ``topk`` best (step, class) entries,
    equal scores by lower step then lower class, then those above ``threshold``."""
    out = []
    for v in range(scores.shape[0]):
        flat = (scores[v] * valid[v, :, None]).reshape(-1)
        order = torch.sort(flat, descending=True, stable=True).indices[:topk]
        order = order[flat[order] > threshold]
        out += [(v, int(i) // scores.shape[2], int(i) % scores.shape[2], float(flat[i])) for i in order]
    return out


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_select_candidates_orders_equal_scores_by_step_then_class(device):
    # saturated sigmoids: many scores exactly 1.0 (and a few other shared values); the top-k
    # cut falls inside the block of 1.0s, so which of them are kept is decided by the order too
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([1.0, 0.75, 0.5, 0.0])[torch.randint(0, 4, (2, 300, 7), generator=g)]
    valid = torch.ones(2, 300, dtype=torch.bool)
    valid[1, 250:] = False
    for topk in (100, 600, 2100):
        b, t, c, s = select_candidates(scores.to(device), valid.to(device), threshold=0.6, topk=topk)
        got = list(zip(b.tolist(), t.tolist(), c.tolist(), s.tolist()))
        assert got == _select_by_stable_sort(scores, valid, 0.6, topk)
    assert (scores == 1.0).sum() > 600


def test_segments_and_seconds():
    segs = segments_from_offsets(torch.tensor([8.0, 0.0]), torch.tensor([[1.0, 2.0], [3.0, 0.5]]),
                                 torch.tensor([4.0, 1.0]))
    assert segs.tolist() == [[4.0, 16.0], [-3.0, 0.5]]
    assert drop_short(segs, 1.0).tolist() == [True, True]
    assert drop_short(segs, 4.0).tolist() == [True, False]
    sec = feature_steps_to_seconds(segs, fps=30.0, feat_stride=4, num_frames=16, duration=1.0)
    # (4 * 4 + 8) / 30 = 0.8; (16 * 4 + 8) / 30 = 2.4 -> clipped to 1.0; (-12 + 8) / 30 < 0 -> 0
    assert torch.allclose(sec, torch.tensor([[0.8, 1.0], [0.0, (2 + 8) / 30]]))
    with pytest.raises(ValueError, match="fps"):
        feature_steps_to_seconds(segs, fps=0, feat_stride=4, num_frames=16, duration=1.0)

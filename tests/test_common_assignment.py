"""pytal.models.common: point generator and label assignment on hand-made segments."""
from __future__ import annotations

import pytest
import torch

from pytal.models.common.assignment import assign_targets, assign_targets_batch
from pytal.models.common.points import PointGenerator, pyramid_strides


def test_pyramid_strides():
    assert pyramid_strides(6) == [1, 2, 4, 8, 16, 32]
    with pytest.raises(ValueError, match="num_levels"):
        pyramid_strides(0)


def test_point_generator_layout():
    gen = PointGenerator([1, 2, 4], [[0, 4], [4, 8], [8, 10000]])
    pts = gen([5, 3, 2])
    assert [p.shape for p in pts] == [(5, 4), (3, 4), (2, 4)]
    assert pts[0][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert pts[1][:, 0].tolist() == [0, 2, 4]
    assert pts[2][:, 0].tolist() == [0, 4]
    assert pts[1][0, 1:].tolist() == [4, 8, 2]
    assert pts[2][1, 1:].tolist() == [8, 10000, 4]
    assert pts[0].dtype == torch.float32
    # the cache hands out copies
    pts[0][0, 0] = 99
    assert gen([5, 3, 2])[0][0, 0] == 0
    feats = [torch.zeros(2, 7, n) for n in (5, 3, 2)]
    assert torch.equal(gen.from_features(feats)[1], gen([5, 3, 2])[1])


def test_point_generator_errors():
    with pytest.raises(ValueError, match="regression_ranges"):
        PointGenerator([1, 2], [[0, 4]])
    with pytest.raises(ValueError, match="regression_ranges\\[0\\]"):
        PointGenerator([1], [[5, 4]])
    gen = PointGenerator([1, 2], [[0, 4], [4, 8]])
    with pytest.raises(ValueError, match="lengths"):
        gen([4])


def _two_level_points():
    # level 0: stride 1, t = 0..7, range [0, 2]; level 1: stride 2, t = 0, 2, 4, 6, range [2, 100]
    return PointGenerator([1, 2], [[0, 2], [2, 100]])([8, 4])


def test_assign_single_segment():
    pts = torch.cat(_two_level_points())
    cls, reg = assign_targets(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([1]), 3)
    assert cls.shape == (12, 3) and reg.shape == (12, 2)
    pos = cls.sum(-1) > 0
    # level 0: points 3 and 4 are strictly inside [2, 5] (radius window is [2, 5]) and their
    # max distance 2 is inside [0, 2]; level 1: only t = 4 (index 8 + 2)
    assert pos.nonzero().flatten().tolist() == [3, 4, 10]
    assert cls[pos].tolist() == [[0, 1, 0]] * 3
    assert reg[3].tolist() == [1.0, 2.0]
    assert reg[4].tolist() == [2.0, 1.0]
    assert reg[10].tolist() == [1.0, 0.5]          # (4 - 2, 5 - 4) / stride 2
    assert reg[~pos].abs().sum() == 0


def test_assign_min_length_wins_and_radius():
    pts = torch.cat(_two_level_points())
    segs = torch.tensor([[2.0, 5.0], [0.0, 7.0]])
    cls, reg = assign_targets(pts, segs, torch.tensor([1, 0]), 2)
    pos = cls.sum(-1) > 0
    # the long action [0, 7] (centre 3.5) on level 1: window [0.5, 6.5] -> t = 2, 4, 6;
    # on level 0 its points fail the range [0, 2]
    assert pos.nonzero().flatten().tolist() == [3, 4, 9, 10, 11]
    assert cls[9].tolist() == [1, 0] and reg[9].tolist() == [1.0, 2.5]
    assert cls[11].tolist() == [1, 0] and reg[11].tolist() == [3.0, 0.5]
    # t = 4 on level 1 qualifies for both: the shorter action wins
    assert cls[10].tolist() == [0, 1] and reg[10].tolist() == [1.0, 0.5]


def test_assign_radius_limits_long_actions():
    # one level, stride 1, unlimited range: only points within 1.5 of the centre 10 are positive
    pts = PointGenerator([1], [[0, 1000]])([21])[0]
    cls, _ = assign_targets(pts, torch.tensor([[0.0, 20.0]]), torch.tensor([0]), 1)
    assert (cls[:, 0] > 0).nonzero().flatten().tolist() == [9, 10, 11]
    cls, _ = assign_targets(pts, torch.tensor([[0.0, 20.0]]), torch.tensor([0]), 1, center_sample="none")
    assert (cls[:, 0] > 0).nonzero().flatten().tolist() == list(range(1, 20))


def test_assign_ties_are_multilabel():
    pts = PointGenerator([1], [[0, 1000]])([10])[0]
    segs = torch.tensor([[2.0, 6.0], [2.0005, 6.0], [2.0, 6.0]])  # equal lengths within 1e-3
    cls, reg = assign_targets(pts, segs, torch.tensor([0, 2, 2]), 3)
    assert cls[4].tolist() == [1, 0, 1]          # clamped to 1 despite two class-2 actions
    # the regression target comes from the strictly shortest action (index 1)
    assert torch.allclose(reg[4], torch.tensor([4 - 2.0005, 2.0]))
    # exact ties: the lowest index
    cls, reg = assign_targets(pts, torch.tensor([[2.0, 6.0], [3.0, 7.0]]), torch.tensor([0, 1]), 2)
    assert cls[5].tolist() == [1, 1] and reg[5].tolist() == [3.0, 1.0]


def test_assign_empty_and_batch():
    pts = _two_level_points()
    cls, reg = assign_targets_batch(pts, [torch.zeros(0, 2), torch.tensor([[2.0, 5.0]])],
                                    [torch.zeros(0, dtype=torch.long), torch.tensor([1])], 3)
    assert cls.shape == (2, 12, 3) and reg.shape == (2, 12, 2)
    assert cls[0].sum() == 0 and reg[0].sum() == 0
    assert cls[1].sum() == 3


def test_assign_errors():
    pts = torch.cat(_two_level_points())
    with pytest.raises(ValueError, match="gt_labels"):
        assign_targets(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([3]), 3)
    with pytest.raises(ValueError, match="gt_segments"):
        assign_targets(pts, torch.tensor([2.0, 5.0]), torch.tensor([1]), 3)
    with pytest.raises(ValueError, match="center_sample"):
        assign_targets(pts, torch.tensor([[2.0, 5.0]]), torch.tensor([1]), 3, center_sample="box")

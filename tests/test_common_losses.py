"""pytal.models.common losses against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from pytal.models.common.losses import (LossNormalizer, branch_losses, ctr_diou_loss_1d, ctr_giou_loss_1d,
                                        ctr_iou_1d, positive_entries, regression_loss, scale_positive_loss_by_iou,
                                        sigmoid_focal_loss, varifocal_loss)

LN2 = math.log(2.0)


def test_sigmoid_focal_loss_values():
    logits = torch.tensor([0.0, 0.0, 2.0])
    targets = torch.tensor([1.0, 0.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, reduction="none")
    p = 1 / (1 + math.exp(-2.0))
    expected = [0.25 * 0.25 * LN2, 0.75 * 0.25 * LN2, 0.75 * p ** 2 * -math.log(1 - p)]
    assert torch.allclose(loss, torch.tensor(expected), atol=1e-6)
    assert torch.allclose(sigmoid_focal_loss(logits, targets, reduction="sum"), torch.tensor(sum(expected)))
    # alpha < 0 disables the class weighting
    loss = sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=-1)
    assert torch.allclose(loss, torch.tensor([0.25 * LN2]))


def test_varifocal_loss_values():
    logits = torch.tensor([0.0, 0.0, 0.0])
    targets = torch.tensor([1.0, 0.0, 0.5])
    loss = varifocal_loss(logits, targets)
    # positive: BCE * q; negative: alpha * |p - q|^2 * BCE
    assert torch.allclose(loss, torch.tensor([LN2, 0.25 * 0.25 * LN2, 0.5 * LN2]), atol=1e-6)
    loss = varifocal_loss(logits, targets, iou_weighted=False)
    assert torch.allclose(loss, torch.tensor([LN2, 0.25 * 0.25 * LN2, LN2]), atol=1e-6)
    assert torch.allclose(varifocal_loss(logits, targets, reduction="mean"),
                          torch.tensor((1 + 0.0625 + 0.5) * LN2 / 3))
    with pytest.raises(ValueError, match="targets"):
        varifocal_loss(logits, targets[:2])
    with pytest.raises(ValueError, match="reduction"):
        varifocal_loss(logits, targets, reduction="avg")


def test_iou_family_values():
    pred = torch.tensor([[1.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    target = torch.tensor([[2.0, 2.0], [1.0, 1.0], [1.0, 3.0]])
    # row 0: inter 3, union 4 -> IoU .75; enclosing 4; centres: pred +0.5, target 0 -> rho .5
    # row 1: identical; row 2: empty prediction -> IoU 0, enclosing 4, rho = 0.5 * (0 - 0 - 3 + 1) = -1
    assert torch.allclose(ctr_iou_1d(pred, target), torch.tensor([0.75, 1.0, 0.0]))
    assert torch.allclose(ctr_giou_loss_1d(pred, target), torch.tensor([0.25, 0.0, 1.0]))
    diou = torch.tensor([0.25 + (0.5 / 4) ** 2, 0.0, 1.0 + (1.0 / 4) ** 2])
    assert torch.allclose(ctr_diou_loss_1d(pred, target), diou)
    assert torch.allclose(ctr_diou_loss_1d(pred, target, reduction="sum"), diou.sum())
    assert torch.allclose(regression_loss("giou", pred, target, reduction="mean"), torch.tensor(1.25 / 3))
    assert torch.allclose(regression_loss("diou", pred, target), diou.sum())
    # empty inputs
    empty = torch.zeros(0, 2)
    assert ctr_diou_loss_1d(empty, empty, reduction="mean").item() == 0.0
    with pytest.raises(ValueError, match="kind"):
        regression_loss("iou", pred, target)
    with pytest.raises(ValueError, match="pred_offsets"):
        ctr_diou_loss_1d(-pred, target)
    with pytest.raises(ValueError, match="target_offsets"):
        ctr_giou_loss_1d(pred, target[:2])


def test_diou_gradient_flows():
    pred = torch.tensor([[1.0, 2.0]], requires_grad=True)
    ctr_diou_loss_1d(pred, torch.tensor([[2.0, 2.0]]), reduction="sum").backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_scale_positive_loss_by_iou():
    loss = torch.ones(3, 2)
    positive = torch.tensor([[False, True], [False, False], [True, True]])
    iou = torch.tensor([0.25, 0.5, 1.0])
    out = scale_positive_loss_by_iou(loss, positive, iou, power=0.5)
    assert torch.allclose(out, torch.tensor([[1.0, 0.5], [1.0, 1.0], [0.5 ** 0.5, 1.0]]))
    with pytest.raises(ValueError, match="iou"):
        scale_positive_loss_by_iou(loss, positive, iou[:2], power=1.0)


def test_loss_normalizer_ema():
    norm = LossNormalizer(100, 0.9)
    assert norm.update(10) == pytest.approx(91.0)
    assert norm.update(0) == pytest.approx(0.9 * 91.0 + 0.1)    # max(num_pos, 1)
    assert norm.update(torch.tensor(5)) == pytest.approx(0.9 * (0.9 * 91.0 + 0.1) + 0.5)
    state = norm.state_dict()
    other = LossNormalizer(1.0)
    other.load_state_dict(state)
    assert other.value == norm.value
    with pytest.raises(ValueError, match="init_loss_norm"):
        LossNormalizer(0)
    with pytest.raises(ValueError, match="momentum"):
        LossNormalizer(1, 1.0)


def _branch_inputs():
    # one video, 3 points (the last padded), 2 classes; point 1 is positive for class 0
    logits = torch.zeros(1, 3, 2)
    cls_t = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    reg_t = torch.tensor([[[0.0, 0.0], [2.0, 2.0], [5.0, 5.0]]])
    valid = torch.tensor([[True, True, False]])
    return logits, cls_t, reg_t, valid


def test_positive_entries_order():
    cls_t = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    valid = torch.tensor([[True, True], [True, False]])
    b, n, c = positive_entries(cls_t, valid)
    assert list(zip(b.tolist(), n.tolist(), c.tolist())) == [(0, 0, 0), (0, 0, 1), (1, 0, 1)]


def test_branch_losses_hand_computed():
    logits, cls_t, reg_t, valid = _branch_inputs()
    pred = torch.tensor([[1.0, 2.0]])                         # IoU .75 with (2, 2), DIoU loss .265625
    out = branch_losses(logits, pred, cls_t, reg_t, valid, normalizer=2.0, iou_weight_power=1.0)
    cls = (0.75 * LN2 + 3 * 0.0625 * LN2) / 2                 # 1 positive (x IoU), 3 valid negatives
    assert out["cls_loss"].item() == pytest.approx(cls, rel=1e-5)
    assert out["reg_loss"].item() == pytest.approx(0.265625 / 2, rel=1e-5)
    assert out["final_loss"].item() == pytest.approx(cls + 0.265625 / 2, rel=1e-5)
    # focal, no IoU weighting, GIoU, regression weight 2
    out = branch_losses(logits, pred, cls_t, reg_t, valid, 1.0, cls_loss="focal", reg_loss="giou", loss_weight=2.0)
    cls = 0.0625 * LN2 + 3 * 0.1875 * LN2
    assert out["cls_loss"].item() == pytest.approx(cls, rel=1e-5)
    assert out["final_loss"].item() == pytest.approx(cls + 2 * 0.25, rel=1e-5)


def test_branch_losses_no_positives_and_errors():
    logits, cls_t, reg_t, valid = _branch_inputs()
    pred = torch.zeros(0, 2, requires_grad=True)
    out = branch_losses(logits.requires_grad_(), pred, torch.zeros_like(cls_t), reg_t, valid, 1.0,
                        iou_weight_power=1.0)
    assert out["reg_loss"].item() == 0.0
    out["final_loss"].backward()
    with pytest.raises(ValueError, match="pred_offsets"):
        branch_losses(logits, torch.zeros(2, 2), cls_t, reg_t, valid, 1.0)
    with pytest.raises(ValueError, match="cls_loss"):
        branch_losses(logits, torch.ones(1, 2), cls_t, reg_t, valid, 1.0, cls_loss="bce")

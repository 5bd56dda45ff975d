"""Training losses of point-based detectors: classification (sigmoid focal, varifocal), 1D
IoU-family regression losses in centre-offset form, and the EMA loss normaliser.

Centre-offset form: a segment predicted at point ``t`` is ``(t - l, t + r)`` with ``l, r >= 0``
(offsets usually in strides); the target is ``(t - l*, t + r*)``. Both contain ``t``, so their
intersection is ``min(l, l*) + min(r, r*)`` and their union equals their enclosing segment
``max(l, l*) + max(r, r*)``; hence 1D GIoU reduces to IoU here (as the public code notes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_loss", "varifocal_loss", "ctr_iou_1d", "ctr_giou_loss_1d",
           "ctr_diou_loss_1d", "regression_loss", "scale_positive_loss_by_iou", "LossNormalizer",
           "positive_entries", "branch_losses"]

_REDUCTIONS = ("none", "sum", "mean")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else loss.sum() * 0.0
    raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")


def _check_same_shape(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.shape != targets.shape:
        raise ValueError(f"targets: expected the shape of logits {tuple(logits.shape)}, got {tuple(targets.shape)}")


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    """RetinaNet focal loss on sigmoid outputs, element-wise, computed in float32.

    ``loss = a_t * (1 - p_t)**gamma * BCE(logits, targets)`` with ``p = sigmoid(logits)``,
    ``p_t = p*y + (1-p)*(1-y)``, ``a_t = alpha*y + (1-alpha)*(1-y)`` (no ``a_t`` if alpha < 0).
    Targets may be soft (label smoothing). Any shape; logits and targets alike.
    """
    _check_same_shape(logits, targets)
    x, y = logits.float(), targets.float()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(loss, reduction)


def varifocal_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25,
                   gamma: float = 2.0, iou_weighted: bool = True,
                   reduction: str = "none") -> torch.Tensor:
    """Varifocal loss (Zhang et al., VarifocalNet), element-wise, computed in float32.

    ``loss = w * BCE(logits, q)`` where for a positive (``q > 0``) ``w = q`` (``iou_weighted``)
    or 1, and for a negative ``w = alpha * |p - q|**gamma``. ``q`` is the target: an IoU-aware
    score in VarifocalNet. The CLTDR-GMG release passes the 0/1 (possibly label-smoothed)
    class targets here and applies the IoU weighting afterwards with
    ``scale_positive_loss_by_iou``; do the same to reproduce it.
    """
    _check_same_shape(logits, targets)
    x, q = logits.float(), targets.float()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, q, reduction="none")
    pos = (q > 0).float()
    pos_weight = q if iou_weighted else torch.ones_like(q)
    weight = pos_weight * pos + alpha * (p - q).abs().pow(gamma) * (1 - pos)
    return _reduce(ce * weight, reduction)


def _check_offsets(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.dim() != 2 or pred.shape[-1] != 2:
        raise ValueError(f"pred_offsets: expected shape (N, 2), got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"target_offsets: expected shape {tuple(pred.shape)}, got {tuple(target.shape)}")
    pred, target = pred.float(), target.float()
    if bool((pred < 0).any()):
        raise ValueError("pred_offsets: expected non-negative (left, right) distances")
    if bool((target < 0).any()):
        raise ValueError("target_offsets: expected non-negative (left, right) distances")
    return pred, target


def ctr_iou_1d(pred_offsets: torch.Tensor, target_offsets: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """IoU of segments in centre-offset form: (N, 2) and (N, 2) non-negative (left, right)
    distances from a shared point -> (N,) IoU in [0, 1]."""
    pred, target = _check_offsets(pred_offsets, target_offsets)
    inter = torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 1], target[:, 1])
    union = pred.sum(-1) + target.sum(-1) - inter
    return inter / union.clamp(min=eps)


def ctr_giou_loss_1d(pred_offsets: torch.Tensor, target_offsets: torch.Tensor, *,
                     reduction: str = "none", eps: float = 1e-8) -> torch.Tensor:
    """GIoU loss ``1 - IoU + (|C| - |U|) / |C|`` in centre-offset form ((N, 2) each).
    ``C`` is the enclosing segment; here ``|C| == |U|``, so this equals ``1 - IoU``."""
    pred, target = _check_offsets(pred_offsets, target_offsets)
    inter = torch.minimum(pred[:, 0], target[:, 0]) + torch.minimum(pred[:, 1], target[:, 1])
    union = pred.sum(-1) + target.sum(-1) - inter
    enclosing = torch.maximum(pred[:, 0], target[:, 0]) + torch.maximum(pred[:, 1], target[:, 1])
    iou = inter / union.clamp(min=eps)
    loss = 1.0 - iou + (enclosing - union) / enclosing.clamp(min=eps)
    return _reduce(loss, reduction)


def ctr_diou_loss_1d(pred_offsets: torch.Tensor, target_offsets: torch.Tensor, *,
                     reduction: str = "none", eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss ``1 - IoU + (rho / |C|)**2`` in centre-offset form ((N, 2) each), with
    ``rho`` the distance between the two segments' centres, ``0.5 * ((r - l) - (r* - l*))``,
    and ``|C|`` the enclosing length."""
    pred, target = _check_offsets(pred_offsets, target_offsets)
    lp, rp = pred[:, 0], pred[:, 1]
    lg, rg = target[:, 0], target[:, 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = lp + rp + lg + rg - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iou + (rho / enclosing.clamp(min=eps)).square()
    return _reduce(loss, reduction)


def regression_loss(kind: str, pred_offsets: torch.Tensor, target_offsets: torch.Tensor, *,
                    reduction: str = "sum") -> torch.Tensor:
    """Dispatch on ``kind`` (config key ``model.reg_loss``): ``"diou"`` or ``"giou"``."""
    if kind == "diou":
        return ctr_diou_loss_1d(pred_offsets, target_offsets, reduction=reduction)
    if kind == "giou":
        return ctr_giou_loss_1d(pred_offsets, target_offsets, reduction=reduction)
    raise ValueError(f"kind: expected 'diou' or 'giou', got {kind!r}")


def scale_positive_loss_by_iou(cls_loss: torch.Tensor, positive: torch.Tensor, iou: torch.Tensor,
                               power: float) -> torch.Tensor:
    """Multiply the classification loss of every positive (point, class) entry by
    ``iou ** power`` (TriDet / CLTDR-GMG "IoU-weighted" classification).

    Args:
        cls_loss: (N, C) element-wise loss.
        positive: (N, C) bool, the positive entries.
        iou: (P,) IoU of each positive entry's predicted segment with its target, in the
            row-major order of ``positive.nonzero()`` (that is, ``cls_loss[positive]`` order).
            Not detached: as in the public code, gradients reach the regression outputs.
        power: exponent (``iou_weight_power``: 0.2 for THUMOS14, 1 for ActivityNet).
    """
    if positive.shape != cls_loss.shape:
        raise ValueError(f"positive: expected shape {tuple(cls_loss.shape)}, got {tuple(positive.shape)}")
    num_pos = int(positive.sum())
    if iou.shape != (num_pos,):
        raise ValueError(f"iou: expected shape ({num_pos},) (one per positive entry), got {tuple(iou.shape)}")
    weight = torch.ones_like(cls_loss)
    weight = weight.masked_scatter(positive, iou.to(cls_loss.dtype).clamp(min=0).pow(power))
    return cls_loss * weight


class LossNormalizer:
    """Exponential moving average of the number of positive points, used to normalise the
    summed losses: ``value <- momentum * value + (1 - momentum) * max(num_pos, 1)``.

    Args:
        init_loss_norm: initial value (``train_cfg.init_loss_norm``; 100 for THUMOS14,
            400 for ActivityNet in the release configs).
        momentum: EMA momentum (0.9).

    Note: the CLTDR-GMG release updates its normaliser twice per training step (once for the
    refined losses, once for the unrefined ones); its ``release`` variant does the same.
    """

    def __init__(self, init_loss_norm: float = 100.0, momentum: float = 0.9) -> None:
        if init_loss_norm <= 0:
            raise ValueError(f"init_loss_norm: expected > 0, got {init_loss_norm}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum: expected in [0, 1), got {momentum}")
        self.value = float(init_loss_norm)
        self.momentum = float(momentum)

    def update(self, num_pos: int | float | torch.Tensor) -> float:
        """Fold in one step's positive count and return the new normaliser."""
        n = float(num_pos.item() if isinstance(num_pos, torch.Tensor) else num_pos)
        self.value = self.momentum * self.value + (1.0 - self.momentum) * max(n, 1.0)
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "momentum": self.momentum}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])
        self.momentum = float(state["momentum"])


def positive_entries(cls_targets: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(b, n, c)`` (each (P,) int64, row-major order) of the positive (video, point,
    class) entries: ``cls_targets[b, n, c] > 0`` at a valid point. This is the order in which
    ``branch_losses`` expects the decoded offsets of the positives (decode them with
    ``trident_decode(..., index=...)`` after mapping ``n`` to its level and step).

    Args: cls_targets (B, N, C); valid (B, N) bool.
    """
    if valid.shape != cls_targets.shape[:2]:
        raise ValueError(f"valid: expected shape {tuple(cls_targets.shape[:2])}, got {tuple(valid.shape)}")
    positive = (cls_targets > 0) & valid[..., None]
    b, n, c = positive.nonzero(as_tuple=True)
    return b, n, c


def branch_losses(cls_logits: torch.Tensor, pred_offsets: torch.Tensor, cls_targets: torch.Tensor,
                  reg_targets: torch.Tensor, valid: torch.Tensor, normalizer: float, *,
                  cls_loss: str = "varifocal", reg_loss: str = "diou",
                  iou_weight_power: float | None = None, label_smoothing: float = 0.0,
                  loss_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Classification and regression losses of one prediction branch (refined or unrefined),
    as the public code computes them.

    Args:
        cls_logits: (B, N, C) logits of all points (levels concatenated).
        pred_offsets: (P, 2) decoded (left, right) distances in strides of the P positive entries,
            in ``positive_entries`` order (a point with several classes appears once per class).
        cls_targets: (B, N, C) 0/1 targets; reg_targets: (B, N, 2) in strides (``assignment``).
        valid: (B, N) bool, False at padded points.
        normalizer: the EMA loss normaliser's current value (update it first with the number of
            positive *points*, ``LossNormalizer.update``).
        cls_loss: ``"varifocal"`` or ``"focal"``.
        reg_loss: ``"diou"`` or ``"giou"``.
        iou_weight_power: if not None, positives' classification losses are multiplied by
            ``IoU(pred, target) ** iou_weight_power`` (not detached).
        label_smoothing: targets become ``y * (1 - s) + s / (C + 1)``.
        loss_weight: weight of the regression loss; <= 0 balances it automatically to the
            classification loss (``cls / max(reg, 0.01)``, detached).

    Returns: ``{"cls_loss", "reg_loss", "final_loss"}`` scalars
    (``final = cls + loss_weight * reg``), summed losses divided by ``normalizer``.
    """
    if cls_logits.shape != cls_targets.shape:
        raise ValueError(f"cls_targets: expected shape {tuple(cls_logits.shape)}, got {tuple(cls_targets.shape)}")
    if reg_targets.shape != cls_targets.shape[:2] + (2,):
        raise ValueError(f"reg_targets: expected shape {tuple(cls_targets.shape[:2]) + (2,)}, got {tuple(reg_targets.shape)}")
    b, n, _ = positive_entries(cls_targets, valid)
    if pred_offsets.shape != (b.numel(), 2):
        raise ValueError(f"pred_offsets: expected shape ({b.numel()}, 2) (one row per positive entry), "
                         f"got {tuple(pred_offsets.shape)}")
    num_classes = cls_targets.shape[-1]
    target = cls_targets[valid].float()                        # (V, C)
    positive = target > 0
    target = target * (1.0 - label_smoothing) + label_smoothing / (num_classes + 1)
    logits = cls_logits[valid]
    if cls_loss == "varifocal":
        loss_c = varifocal_loss(logits, target)
    elif cls_loss == "focal":
        loss_c = sigmoid_focal_loss(logits, target)
    else:
        raise ValueError(f"cls_loss: expected 'varifocal' or 'focal', got {cls_loss!r}")
    gt_offsets = reg_targets[b, n]
    if iou_weight_power is not None and b.numel() > 0:
        loss_c = scale_positive_loss_by_iou(loss_c, positive, ctr_iou_1d(pred_offsets, gt_offsets),
                                            iou_weight_power)
    loss_c = loss_c.sum() / normalizer
    if b.numel() == 0:
        loss_r = pred_offsets.sum() * 0.0
    else:
        loss_r = regression_loss(reg_loss, pred_offsets, gt_offsets, reduction="sum") / normalizer
    weight = loss_weight if loss_weight > 0 else loss_c.detach() / max(float(loss_r.item()), 0.01)
    return {"cls_loss": loss_c, "reg_loss": loss_r, "final_loss": loss_c + loss_r * weight}

"""SeqAttNet's losses (paper section 3.7.2):

    L = L_pe + lambda_te L_te + lambda_cl L_cl + lambda_er L_er + lambda_2 L2(Theta)
    L_te = L_bl(P_S, G_S) + L_bl(P_E, G_E)
    L_pe = L_bl(M_CC, G_C) + lambda_R * MSE(M_CR, G_C)

``L_bl`` is the weighted binary logistic loss with ``b = g > theta``,
``alpha+ = l_w / l+``, ``alpha- = l_w / l-``, i.e. the mean negative log-likelihood over the
positives plus that over the negatives (a side without entries contributes 0).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

__all__ = ["weighted_logistic_loss", "masked_mse", "l2_penalty", "EPS"]

EPS = 1e-6


def weighted_logistic_loss(prob: torch.Tensor, target: torch.Tensor, threshold: float,
                           valid: torch.Tensor | None = None) -> torch.Tensor:
    """``L_bl``: probabilities and soft targets of any (same) shape; ``valid`` selects the
    entries that count (default all)."""
    prob = prob.clamp(EPS, 1 - EPS)
    positive = target > threshold
    if valid is None:
        valid = torch.ones_like(positive)
    pos, neg = (positive & valid).to(prob.dtype), (~positive & valid).to(prob.dtype)
    loss_pos = -(torch.log(prob) * pos).sum() / pos.sum().clamp(min=1)
    loss_neg = -(torch.log1p(-prob) * neg).sum() / neg.sum().clamp(min=1)
    return loss_pos + loss_neg


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the ``valid`` entries (0 without any)."""
    w = valid.to(pred.dtype)
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp(min=1)


def l2_penalty(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """``L2(Theta)``: the sum of squares of the weights (parameters of rank >= 2)."""
    terms = [p.pow(2).sum() for p in parameters if p.requires_grad and p.dim() >= 2]
    return torch.stack(terms).sum()


def nll(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``L_cl``: mean negative log-likelihood of (P,) labels under (P, C) log-probabilities
    (0 without proposals)."""
    if labels.numel() == 0:
        return log_probs.sum() * 0.0
    return F.nll_loss(log_probs, labels)

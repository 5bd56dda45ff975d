"""SeqAttNet's networks: the evaluation module (paper's Table 1, BMN's layers) and the
attention + two-dimensional sequential networks of error estimation and classification
(Tables 2 and 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models.seqattnet.boundary_matching import BoundaryMatching
from pytal.nn import Float32Conv1d, Float32Conv2d, Float32Linear

__all__ = ["BaseModule", "ProposalEvaluation", "SequentialHead", "TemporalAttention",
           "TemporalEvaluation"]


class BaseModule(nn.Sequential):
    """(B, F, T) -> (B, C, T): two Conv1D (kernel 3, C channels, ReLU)."""

    def __init__(self, input_dim: int, dim: int) -> None:
        super().__init__(nn.Conv1d(input_dim, dim, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(inplace=True))


class TemporalEvaluation(nn.Module):
    """(B, C, T) -> (B, 2, T) start and end probabilities: one branch each of Conv1D
    (kernel 3, C, ReLU) and Conv1D (kernel 1, 1, sigmoid)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.start, self.end = (nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1),
                                              nn.ReLU(inplace=True), Float32Conv1d(dim, 1, 1))
                                for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.cat((self.start(x), self.end(x)), dim=1))


class ProposalEvaluation(nn.Module):
    """(B, C, T) -> (B, 2, D, T) confidence maps ``[M_CR, M_CC]`` (regression,
    classification) in (0, 1): Conv1D (3, C, ReLU), boundary matching (N points),
    Conv3D (N,1,1) -> hidden_3d (ReLU), Conv2D 1x1 -> hidden_2d (ReLU), two Conv2D 3x3
    (ReLU), Conv2D 1x1 -> 2 (sigmoid)."""

    def __init__(self, dim: int, temporal_scale: int, duration_bins: int, num_samples: int,
                 samples_per_bin: int, boundary_ratio: float, hidden_3d: int,
                 hidden_2d: int) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU(inplace=True))
        self.matching = BoundaryMatching(temporal_scale, duration_bins, num_samples,
                                         samples_per_bin, boundary_ratio)
        self.conv3d = nn.Sequential(
            nn.Conv3d(dim, hidden_3d, (num_samples, 1, 1), stride=(num_samples, 1, 1)),
            nn.ReLU(inplace=True))
        self.conv2d = nn.Sequential(
            nn.Conv2d(hidden_3d, hidden_2d, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_2d, hidden_2d, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_2d, hidden_2d, 3, padding=1), nn.ReLU(inplace=True),
            Float32Conv2d(hidden_2d, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.matching.fused_conv3d(self.conv1d(x), self.conv3d[0])  # (B, hidden_3d, D, T)
        return torch.sigmoid(self.conv2d(F.relu(x, inplace=True)))


class TemporalAttention(nn.Module):
    """(P, F, L) -> AX (P, F, L), L <= T_p: one Linear T_p x T_p, shared by every feature
    dimension, scores each step from the feature's whole time series; a softmax over the
    proposal's valid steps, times their number, gives the attention map A (uniform attention
    is A = 1), and ``AX = A * X`` (zero on the padding).

    An input of L < T_p steps is the T_p-step input without its trailing padding (every
    proposal's valid steps lie within the first L): padding steps are zero and get no
    attention, so the Linear's first L rows and columns give the same result."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.linear = nn.Linear(length, length)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """AX (P, F, L) of (P, F, L) inputs with (P, L) valid steps."""
        steps = _check_steps(x, self.linear.in_features)
        logits = F.linear(x, self.linear.weight[:steps, :steps], self.linear.bias[:steps])
        logits = logits.masked_fill_(~valid[:, None, :], float("-inf"))
        count = valid.sum(dim=1).to(x.dtype)[:, None, None]                   # (P, 1, 1)
        return torch.softmax(logits, dim=-1) * count * x


def _check_steps(x: torch.Tensor, length: int) -> int:
    if x.dim() != 3 or x.shape[2] > length:
        raise ValueError(f"SeqAttNet heads: expected a 3D input (P, F, L) with L <= T_p = "
                         f"{length} steps, got {tuple(x.shape)}")
    return x.shape[2]


class SequentialHead(nn.Module):
    """Temporal attention, then the two-dimensional sequential network:
    ``H_i = ReLU(sum_j w_j AX_ij)`` (one Linear T_p -> 1 shared by the features), then a
    Linear F -> ``out_dim`` over the features and ``activation`` ("tanh" or "log_softmax").
    (P, F, T_p) -> (P, out_dim)."""

    def __init__(self, length: int, feat_dim: int, out_dim: int, activation: str) -> None:
        super().__init__()
        if activation not in ("tanh", "log_softmax"):
            raise ValueError(f"SequentialHead: activation must be 'tanh' or 'log_softmax', "
                             f"got {activation!r}")
        self.attention = TemporalAttention(length)
        self.temporal = nn.Linear(length, 1)
        self.content = Float32Linear(feat_dim, out_dim)
        self.activation = activation

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(P, F, L) 3D input (L <= T_p, see :class:`TemporalAttention`) with (P, L) valid
        steps -> (P, out_dim)."""
        steps = x.shape[2]
        ax = self.attention(x, valid)
        h = F.relu(F.linear(ax, self.temporal.weight[:, :steps], self.temporal.bias)
                   .squeeze(-1))                                           # (P, F)
        out = self.content(h)
        return torch.tanh(out) if self.activation == "tanh" else F.log_softmax(out, dim=-1)

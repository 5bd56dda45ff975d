"""The boundary-matching layer (BMN, Lin et al. ICCV 2019): for every proposal of the
confidence map (start step t, duration index d), N features sampled along the proposal
extended by ``boundary_ratio`` of its length on each side.

Proposal (d, t) covers feature steps ``[t, t + d + 1]`` (d = 0 .. D-1); it is valid when its
end ``t + d + 1 <= T - 1``. Its sampling region ``[t - r * len, t + d + 1 + r * len]``
(``len = d + 1``, ``r = boundary_ratio``) holds ``N * S`` evenly spaced points, the first and
last on the region's ends; sample point n is the mean of points ``n * S .. n * S + S - 1``
(S = ``samples_per_bin``), each linearly interpolated between its two neighbouring steps,
with steps outside ``[0, T - 1]`` read as zero. Invalid proposals get zero weights.

The weights form a (T, N * D * T) matrix computed once per (T, D, N, S, r) and cached, so the
layer is one matmul: (B, C, T) -> (B, C, N, D, T), over the valid proposals' columns only.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

__all__ = ["BoundaryMatching", "boundary_matching_weights", "proposal_valid_mask"]


def proposal_valid_mask(temporal_scale: int, duration_bins: int,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """(D, T) bool: proposal (d, t) ends inside the sequence (``t + d + 1 <= T - 1``)."""
    d = torch.arange(duration_bins, device=device)[:, None]
    t = torch.arange(temporal_scale, device=device)[None, :]
    return t + d + 1 <= temporal_scale - 1


@functools.lru_cache(maxsize=4)
def boundary_matching_weights(temporal_scale: int, duration_bins: int, num_samples: int,
                              samples_per_bin: int = 3, boundary_ratio: float = 0.5
                              ) -> torch.Tensor:
    """(T, N, D, T) float32 interpolation weights ``W[i, n, d, t]``: the weight of step ``i``
    in sample point ``n`` of proposal (d, t) (see the module docstring). Cached; do not
    modify the returned tensor."""
    T, D, N, S = temporal_scale, duration_bins, num_samples, samples_per_bin
    t = torch.arange(T, dtype=torch.float64)[None, :, None]              # (1, T, 1)
    d = torch.arange(D, dtype=torch.float64)[:, None, None]              # (D, 1, 1)
    length = d + 1.0
    lo = t - boundary_ratio * length
    hi = t + d + 1.0 + boundary_ratio * length
    k = torch.arange(N * S, dtype=torch.float64)[None, None, :]
    points = lo + (hi - lo) * k / max(N * S - 1, 1)                       # (D, T, N*S)
    floor = points.floor()
    frac = points - floor
    valid = proposal_valid_mask(T, D)[..., None]                          # (D, T, 1)
    shape = (D, T, N, S)
    d_idx = torch.arange(D)[:, None, None, None].expand(shape)
    t_idx = torch.arange(T)[None, :, None, None].expand(shape)
    n_idx = torch.arange(N)[None, None, :, None].expand(shape)
    weights = torch.zeros(T, N, D, T, dtype=torch.float64)
    for offset, w in ((0, 1.0 - frac), (1, frac)):                       # the two neighbours
        pos = floor.long() + offset
        keep = ((pos >= 0) & (pos <= T - 1) & valid).view(shape)
        weights.index_put_((pos.view(shape)[keep], n_idx[keep], d_idx[keep], t_idx[keep]),
                           (w / S).view(shape)[keep], accumulate=True)
    return weights.to(torch.float32)


class BoundaryMatching(nn.Module):
    """(B, C, T) features -> (B, C, N, D, T) boundary-matching features (one matmul).

    Only the valid proposals' columns of the weights are kept (about half of the D x T map
    when D = T; the others are zero), as a non-persistent buffer (not in the state dict: they
    are a function of the configuration); the matmuls produce those columns and the invalid
    entries are filled in after."""

    def __init__(self, temporal_scale: int, duration_bins: int, num_samples: int,
                 samples_per_bin: int = 3, boundary_ratio: float = 0.5) -> None:
        super().__init__()
        self.temporal_scale, self.duration_bins = temporal_scale, duration_bins
        self.num_samples = num_samples
        weights = boundary_matching_weights(temporal_scale, duration_bins, num_samples,
                                            samples_per_bin, boundary_ratio)
        columns = proposal_valid_mask(temporal_scale, duration_bins).flatten().nonzero()[:, 0]
        #: (V,) the valid proposals' flat indices d * T + t in the (D, T) map
        self.register_buffer("columns", columns, persistent=False)
        #: (T, N, V) the sampling weights of the valid proposals
        self.register_buffer("weights", weights.flatten(2)[:, :, columns].contiguous(),
                             persistent=False)

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[2] != self.temporal_scale:
            raise ValueError(f"BoundaryMatching: expected T = {self.temporal_scale} steps, "
                             f"got {x.shape[2]}")

    def _full_map(self, valid: torch.Tensor) -> torch.Tensor:
        """(..., V) values of the valid proposals -> (..., D * T), zero elsewhere."""
        out = valid.new_zeros(valid.shape[:-1] + (self.duration_bins * self.temporal_scale,))
        return out.index_copy(-1, self.columns, valid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        b, c, t = x.shape
        out = torch.matmul(x, self.weights.to(x.dtype).view(t, -1))       # (B, C, N * V)
        out = self._full_map(out.view(b, c, self.num_samples, -1))
        return out.view(b, c, self.num_samples, self.duration_bins, t)

    def fused_conv3d(self, x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
        """``conv(self(x)).squeeze(2)`` for a Conv3d with kernel and stride (N, 1, 1), without
        the (B, C, N, D, T) tensor: both are linear, so the convolution's weights are applied
        to the T input steps first, ``Y[b, h, i, n] = sum_c w[h, c, n] x[b, c, i]``, and the
        sampling weights after, as one matmul over (i, n): (B, C, T) -> (B, H, D, T)."""
        self._check(x)
        b, c, t = x.shape
        w = conv.weight.view(conv.out_channels, c, self.num_samples)
        y = torch.einsum("hcn,bci->bhin", w, x).reshape(b, conv.out_channels, -1)
        sampling = self.weights.to(x.dtype).view(t * self.num_samples, -1)   # (T * N, V)
        out = self._full_map(torch.matmul(y, sampling))
        if conv.bias is not None:
            out = out + conv.bias[:, None]
        return out.view(b, conv.out_channels, self.duration_bins, t)

"""Output layers that compute in float32 under ``torch.autocast``.

A detector's last layers give the logits that are ranked, thresholded and decoded into
boundaries; in bfloat16 (8-bit mantissa) close scores collapse onto the same value. These
layers take the same parameters, names and state dicts as their ``torch.nn`` parents and, while
autocast is on for the input's device, cast the input up and run the parent's forward with
autocast off; without autocast they are the parent unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Float32Conv1d", "Float32Conv2d", "Float32Linear"]


class _Float32Output:
    """Mixin placed before an ``nn.Module`` layer class whose forward takes one tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if torch.is_autocast_enabled(device):
            with torch.autocast(device, enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class Float32Conv1d(_Float32Output, nn.Conv1d):
    """``nn.Conv1d`` in float32 under autocast: (B, C_in, T) -> (B, C_out, T_out)."""


class Float32Conv2d(_Float32Output, nn.Conv2d):
    """``nn.Conv2d`` in float32 under autocast: (B, C_in, H, W) -> (B, C_out, H_out, W_out)."""


class Float32Linear(_Float32Output, nn.Linear):
    """``nn.Linear`` in float32 under autocast: (..., in_features) -> (..., out_features)."""

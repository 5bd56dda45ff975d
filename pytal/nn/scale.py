"""A learnable scalar multiplier (one per pyramid level in the regression heads)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Scale"]


class Scale(nn.Module):
    """``x -> scale * x`` with a learnable 0-d parameter ``scale`` (initialised to ``init_value``).

    The parameter is 0-d, as in the public ActionFormer/TriDet/CLTDR-GMG code, so their
    ``*.scale.<l>.scale`` checkpoint entries load unchanged.
    """

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

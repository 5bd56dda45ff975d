"""The dtype the ops compute in, shared by the references and the ops' fake kernels."""
from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic and saved statistics use for inputs of ``dtype``: float64 for
    float64 (so that ``gradcheck`` is meaningful), else float32 (float16 and bfloat16
    accumulate in float32; FFTs are never done in half). Results are rounded once to the
    input dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32

"""pytal: temporal action localization in PyTorch, with fused C++/CUDA operators.

Submodules are imported on first use, so ``import pytal`` stays cheap::

    import pytal
    pytal.ops.backend_info()
    pytal.postprocess.batched_nms(...)
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "config",
    "data",
    "engine",
    "evaluation",
    "io",
    "models",
    "nn",
    "ops",
    "postprocess",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"pytal.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pytal' has no attribute {name!r}")

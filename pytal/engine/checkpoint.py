"""Checkpoint files written atomically: a temporary file in the same folder, then a rename."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Union

import torch

__all__ = ["atomic_save", "load_checkpoint", "CHECKPOINT_FORMAT"]

#: Marks a pytal checkpoint (``ckpt["format"]``); other keys: ``config`` (the resolved config
#: dict), ``model``, ``epoch`` and, for resumable ones, the training state (see Trainer).
CHECKPOINT_FORMAT = "pytal-checkpoint-1"


def atomic_save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the complete
    new one: the data goes to a temporary file in the same folder, is flushed to disk, and is
    renamed over ``path``. On any failure the temporary file is removed and ``path`` is left
    untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: Union[str, os.PathLike], map_location: Any = "cpu") -> dict:
    """Load a checkpoint dict (any pickled content: only load files you trust)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    return ckpt

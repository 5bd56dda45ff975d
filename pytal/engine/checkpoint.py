"""Checkpoint files written atomically: a temporary file in the same folder, then a rename."""
from __future__ import annotations

import os
from typing import Any, Union

import torch

from pytal.io.atomic import atomic_write

__all__ = ["atomic_save", "load_checkpoint", "CHECKPOINT_FORMAT"]

#: Marks a pytal checkpoint (``ckpt["format"]``); other keys: ``config`` (the resolved config
#: dict), ``model``, ``epoch``, ``extraction`` (the feature folder's manifest settings, see
#: :mod:`pytal.video.manifest`, or None) and, for resumable ones, the training state (see Trainer).
CHECKPOINT_FORMAT = "pytal-checkpoint-1"


def atomic_save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the complete
    new one: the data goes to a temporary file in the same folder, is flushed to disk, and is
    renamed over ``path``. On any failure the temporary file is removed and ``path`` is left
    untouched."""
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def load_checkpoint(path: Union[str, os.PathLike], map_location: Any = "cpu") -> dict:
    """Load a checkpoint dict (any pickled content: only load files you trust)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(ckpt).__name__}")
    return ckpt

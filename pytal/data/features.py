"""Feature files on disk: one per video, ``<feature_dir>/<prefix><video_id><ext>``.

``.npy``: a (T, C) array (cast to float32). ``.pt``: a (T, C) tensor saved with ``torch.save``,
or a dict holding one under ``"feats"`` / ``"features"``.
"""
from __future__ import annotations

import os
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

SUPPORTED_EXTENSIONS = (".npy", ".pt")


def feature_path(feature_dir: Union[str, os.PathLike], video_id: str, *,
                 prefix: str = "", ext: str = ".npy") -> str:
    """The file holding ``video_id``'s features."""
    return os.path.join(os.fspath(feature_dir), f"{prefix}{video_id}{ext}")


def load_features(path: Union[str, os.PathLike]) -> torch.Tensor:
    """(C, T) float32 features from a (T, C) ``.npy`` or ``.pt`` file.

    Raises FileNotFoundError naming ``path`` when it is missing, ValueError when the content is
    not a 2-D array.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature file not found: {path}")
    if path.endswith(".npy"):
        feats = torch.from_numpy(np.load(path, allow_pickle=False))
    elif path.endswith(".pt"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, dict):
            obj = obj.get("feats", obj.get("features"))
        feats = torch.as_tensor(obj) if obj is not None else None
    else:
        raise ValueError(f"unsupported feature file extension in {path}; expected one of "
                         f"{SUPPORTED_EXTENSIONS}")
    if feats is None or feats.ndim != 2:
        shape = None if feats is None else tuple(feats.shape)
        raise ValueError(f"feature file {path}: expected a (T, C) array, got shape {shape}")
    return feats.to(torch.float32).t().contiguous()


def resize_features(feats: torch.Tensor, length: int) -> torch.Tensor:
    """(C, T) -> (C, length) by linear interpolation (``align_corners=False``, as ActionFormer)."""
    if feats.shape[-1] == length:
        return feats
    return F.interpolate(feats[None], size=length, mode="linear", align_corners=False)[0]

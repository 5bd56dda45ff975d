"""Feature files on disk: one per video, ``<feature_dir>/<prefix><video_id><ext>``.

``.npy``: a (T, C) floating-point array (cast to float32). ``.pt``: a (T, C) tensor saved with
``torch.save``, or a dict holding one under ``"feats"`` / ``"features"``. Values must be finite.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from pytal.data.torch_files import UnreadableFileError, UnsafeFileError, load_weights_only

SUPPORTED_EXTENSIONS = (".npy", ".pt")


def feature_path(feature_dir: Union[str, os.PathLike], video_id: str, *,
                 prefix: str = "", ext: str = ".npy") -> str:
    """The file holding ``video_id``'s features."""
    return os.path.join(os.fspath(feature_dir), f"{prefix}{video_id}{ext}")


def load_features(path: Union[str, os.PathLike], *, channels: Optional[int] = None
                  ) -> torch.Tensor:
    """(C, T) float32 features from a (T, C) ``.npy`` or ``.pt`` file.

    The file must hold a 2-D floating-point array (float16, bfloat16, float32 or float64) of
    finite values, with ``channels`` columns when given. ``.npy`` files are read without
    pickle and ``.pt`` files with ``weights_only=True``, so a feature file never runs code.

    Raises FileNotFoundError naming ``path`` when it is missing, ValueError naming it for
    anything else: unreadable or truncated content, another rank, dtype or channel count,
    NaN or infinity (with the first bad step and channel).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature file not found: {path}")
    if not path.endswith(SUPPORTED_EXTENSIONS):
        raise ValueError(f"unsupported feature file extension in {path}; expected one of "
                         f"{SUPPORTED_EXTENSIONS}")
    if path.endswith(".npy"):
        try:
            feats = torch.from_numpy(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError, TypeError) as err:
            raise ValueError(f"feature file {path}: not a readable .npy file "
                             f"({type(err).__name__}: {_first_line(err)})") from None
    else:
        try:
            obj = load_weights_only(path)
        except UnsafeFileError as err:
            raise ValueError(f"feature file {path}: refused: loading it would import {err}, "
                             "which can run code") from None
        except UnreadableFileError as err:
            raise ValueError(f"feature file {path}: not a readable .pt file ({err})") from None
        if isinstance(obj, dict):
            obj = obj.get("feats", obj.get("features"))
        feats = obj if isinstance(obj, torch.Tensor) else None
    if feats is None:
        raise ValueError(f"feature file {path}: expected a (T, C) tensor, or a dict holding one "
                         "under 'feats' or 'features'")
    if feats.ndim != 2:
        raise ValueError(f"feature file {path}: expected a (T, C) array, got shape "
                         f"{tuple(feats.shape)}")
    if not feats.is_floating_point():
        raise ValueError(f"feature file {path}: expected floating-point features (float16, "
                         f"float32 or float64), got {str(feats.dtype).replace('torch.', '')}")
    if channels is not None and feats.shape[1] != channels:
        raise ValueError(f"feature file {path}: {feats.shape[1]} channels, expected "
                         f"input_dim={channels}; shape {tuple(feats.shape)} is read as (T, C)")
    feats = feats.to(torch.float32)
    finite = torch.isfinite(feats)
    if not bool(finite.all()):
        step, channel = (int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"feature file {path}: {float(feats[step, channel])} at step {step} "
                         f"(channel {channel}); features must be finite")
    return feats.t().contiguous()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no detail"


def resize_features(feats: torch.Tensor, length: int) -> torch.Tensor:
    """(C, T) -> (C, length) by linear interpolation (``align_corners=False``, as ActionFormer)."""
    if feats.shape[-1] == length:
        return feats
    return F.interpolate(feats[None], size=length, mode="linear", align_corners=False)[0]

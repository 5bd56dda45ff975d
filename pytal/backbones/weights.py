"""Backbone weights from a path or the local torch cache; never downloaded at run time."""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import torch

__all__ = ["WeightsNotFound", "RANDOM", "cache_dir", "resolve_weights", "file_hash",
           "load_state_dict_file"]

#: ``--weights random``: a seeded random initialisation (tests, smoke runs).
RANDOM = "random"


class WeightsNotFound(FileNotFoundError):
    """No weights for a backbone; the message says where to put them."""


def cache_dir() -> str:
    """Where torch keeps downloaded checkpoints (``$TORCH_HOME/hub/checkpoints``)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def resolve_weights(backbone: str, weights: Optional[str], filename: str, source: str) -> str:
    """The weights file to use, or :data:`RANDOM`.

    ``weights``: a path, ``"random"``, or None to look for ``filename`` in :func:`cache_dir`.
    Raises :class:`WeightsNotFound` naming the path, or saying where to put ``filename``
    (obtained from ``source``)."""
    if weights == RANDOM:
        return RANDOM
    if weights is not None:
        path = os.path.expanduser(os.fspath(weights))
        if not os.path.isfile(path):
            raise WeightsNotFound(f"backbone {backbone}: weights file not found: {path}")
        return path
    cached = os.path.join(cache_dir(), filename)
    if os.path.isfile(cached):
        return cached
    raise WeightsNotFound(
        f"backbone {backbone}: no weights; pass --weights PATH, or put {filename} (from {source}) "
        f"in {cache_dir()}; --weights random gives random weights (tests and smoke runs only)")


def file_hash(path: str) -> str:
    """First 16 hex digits of the file's SHA-256 (the manifest's record of the weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save`` (tensors only: loading never runs code). A dict
    holding one under ``state_dict`` / ``model`` is unwrapped."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one message
        raise ValueError(f"{path}: not a readable state dict ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (names -> tensors)")
    return obj

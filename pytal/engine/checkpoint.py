"""Checkpoint files: written atomically (a temporary file in the same folder, then a rename) and
read without running code.

Loading uses ``torch.load(weights_only=True)``: the pickle may build tensors and plain
containers only (torch's allowlist, plus :data:`SAFE_GLOBALS`), never import or call anything
else. pytal's own checkpoints hold only tensors, numbers, strings, lists, tuples and dicts (the
config as a dict); the public CLTDR-GMG release's (``{"epoch", "state_dict",
"state_dict_ema", "optimizer", "scheduler"}``) hold the same. A file that needs more is refused
with an error that names what it wanted; ``convert_checkpoint(..., trust=True)`` (``pytal
convert-checkpoint --trust``) reads such a file once with full pickle and writes a safe copy.
"""
from __future__ import annotations

import dataclasses
import os
from argparse import Namespace
from typing import Any, Union

import numpy as np
import torch

from pytal.data.torch_files import UnreadableFileError, UnsafeFileError, load_weights_only
from pytal.io.atomic import atomic_write

__all__ = ["atomic_save", "load_checkpoint", "convert_checkpoint", "plain_checkpoint",
           "CheckpointError", "CHECKPOINT_FORMAT", "SAFE_GLOBALS"]

#: Marks a pytal checkpoint (``ckpt["format"]``); other keys: ``config`` (the resolved config
#: dict), ``model``, ``epoch``, ``extraction`` (the feature folder's manifest settings, see
#: :mod:`pytal.video.manifest`, or None) and, for resumable ones, the training state (see Trainer).
CHECKPOINT_FORMAT = "pytal-checkpoint-1"

#: Globals a checkpoint may name beyond torch's own allowlist (which covers tensors, storages,
#: ``OrderedDict``, ``torch.Size`` / dtype / device). pytal's format and the CLTDR-GMG
#: release's need nothing more; anything added here must build data, never call code.
SAFE_GLOBALS: tuple = ()


class CheckpointError(ValueError):
    """A file that is not a checkpoint pytal loads; the message names the file and why."""


def atomic_save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the complete
    new one: the data goes to a temporary file in the same folder, is flushed to disk, and is
    renamed over ``path``. On any failure the temporary file is removed and ``path`` is left
    untouched."""
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def load_checkpoint(path: Union[str, os.PathLike], map_location: Any = "cpu") -> dict:
    """The checkpoint dict of ``path``, loaded with ``weights_only=True`` (no code runs).

    Raises FileNotFoundError when it is missing, :class:`CheckpointError` (a ValueError) naming
    the file when it is unreadable, truncated, not a dict, or needs globals beyond the
    allowlist (the message lists them and says how to convert a trusted file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = load_weights_only(path, map_location=map_location, safe_globals=SAFE_GLOBALS)
    except UnsafeFileError as err:
        raise CheckpointError(
            f"{path}: refused: loading it would import {err}, which can run code (pytal loads "
            "checkpoints of tensors, numbers, strings, lists and dicts only). If you trust the "
            f"file, convert it once: pytal convert-checkpoint --trust {path} OUT.pt") from None
    except UnreadableFileError as err:
        raise CheckpointError(f"{path}: not a checkpoint ({err})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, got "
                              f"{type(ckpt).__name__})")
    return ckpt


def convert_checkpoint(source: Union[str, os.PathLike], target: Union[str, os.PathLike], *,
                       trust: bool = False) -> dict:
    """Read ``source`` with full pickle (it may run code: only with ``trust=True``), turn its
    content into plain data (:func:`plain_checkpoint`) and write it to ``target`` atomically,
    which :func:`load_checkpoint` then reads safely. Returns the converted dict."""
    source, target = os.fspath(source), os.fspath(target)
    if not trust:
        raise CheckpointError(f"{source}: converting reads the file with full pickle, which can "
                              "run code; pass --trust (trust=True) if you trust its origin")
    if not os.path.isfile(source):
        raise FileNotFoundError(f"checkpoint not found: {source}")
    try:
        obj = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as err:                      # noqa: BLE001: any failure of the unpickler
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        raise CheckpointError(f"{source}: not a checkpoint ({type(err).__name__}: "
                              f"{first.strip() or 'no detail'})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: not a checkpoint (expected a dict, got "
                              f"{type(obj).__name__})")
    plain = plain_checkpoint(obj, where=source)
    atomic_save(plain, target)
    try:
        load_checkpoint(target)
    except CheckpointError:
        os.unlink(target)
        raise
    return plain


def plain_checkpoint(value: Any, *, where: str = "checkpoint", key: str = "") -> Any:
    """``value`` as tensors, numbers, strings, bytes, None, lists, tuples and dicts: numpy
    arrays become tensors, numpy scalars numbers, dataclasses and namespaces dicts. Anything
    else raises :class:`CheckpointError` naming its key."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone() if isinstance(value, torch.nn.Parameter) else value
    if isinstance(value, np.generic):                 # before float: np.float64 is one
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.dtype,
                                           torch.device)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise CheckpointError(f"{where}: {key or 'the file'} is a numpy array of Python "
                                  "objects; it cannot be stored as data")
        if value.dtype.kind == "u" and value.dtype.itemsize > 1:
            value = value.astype(np.int64)        # torch has no general uint16/32/64 tensors
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Namespace):
        value = vars(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain_checkpoint(v, where=where, key=f"{key}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain_checkpoint(v, where=where, key=f"{key}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise CheckpointError(f"{where}: {key or 'the file'} is a {type(value).__module__}."
                          f"{type(value).__qualname__}, which a checkpoint cannot hold as data")

"""Reading files written by ``torch.save`` without running code: ``torch.load(weights_only=True)``
with errors that say why a file was not read (feature files and checkpoints use it)."""
from __future__ import annotations

import os
import pickle
import re
from typing import Any, Sequence, Union

import torch


class UnsafeFileError(ValueError):
    """The file's pickle needs globals beyond the allowlist (``names``): loading it could run
    code."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class UnreadableFileError(ValueError):
    """The file is not something ``torch.load`` reads (truncated, empty, another format);
    the message is the reason in one line."""


def load_weights_only(path: Union[str, os.PathLike], *, map_location: Any = "cpu",
                      safe_globals: Sequence[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` with ``safe_globals`` allowed beyond torch's
    allowlist. Raises :class:`UnsafeFileError` listing what else the file wants and
    :class:`UnreadableFileError` for anything unreadable."""
    path = os.fspath(path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(path, err, safe_globals)
        if unsafe:
            raise UnsafeFileError(unsafe) from None
        raise UnreadableFileError(f"UnpicklingError: {_reason(err)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, MemoryError) as err:
        raise UnreadableFileError(f"{type(err).__name__}: {_reason(err)}") from None


def _unsafe_globals(path: str, err: Exception, safe_globals: Sequence[Any]) -> list[str]:
    """The globals ``path`` needs beyond the allowlist (from its pickle, else the error)."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in safe_globals}
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:                              # noqa: BLE001: legacy or damaged file
        names = re.findall(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return sorted(set(names) - allowed)


def _reason(err: BaseException) -> str:
    """The line of an exception message that says what is wrong (torch's weights-only errors
    put it after several lines of advice)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()
    if not lines:
        return "empty or truncated file" if isinstance(err, EOFError) else "no detail"
    return lines[0].split(". ")[0]

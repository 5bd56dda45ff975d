"""Progress bars that draw only on a terminal.

Written to a log file or a pipe, a bar's carriage-return frames pile up (megabytes for one
training run); there the trainer's one log line per epoch is the progress report instead.
"""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bars_wanted(progress: bool) -> bool:
    """True when ``progress`` is asked for and standard error is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(progress and isatty is not None and isatty())


def progress_bar(iterable: Iterable[T], *, progress: bool, **options) -> Iterable[T]:
    """``tqdm(iterable, **options)`` drawn only when :func:`bars_wanted` (``leave=False``)."""
    return tqdm(iterable, disable=not bars_wanted(progress), leave=False, **options)

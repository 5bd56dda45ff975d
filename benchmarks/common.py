"""Helpers shared by the benchmark scripts: timing, peak memory, and printing a table.
``environment`` lives in :mod:`pytal.bench` (the installed ``pytal bench`` needs it)."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Optional, Sequence

import torch

from pytal.bench import environment  # noqa: F401  (re-exported for the benchmark scripts)


def time_call(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1,
              cuda: bool = False) -> float:
    """Median wall time of ``fn()`` in seconds (CUDA work synchronised when ``cuda``)."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def print_table(title: str, rows: Sequence[tuple[str, Optional[float], str]],
                baseline: Optional[str] = None) -> None:
    """Rows of (name, seconds or None, note); ratios are baseline time / row time."""
    base = dict((r[0], r[1]) for r in rows).get(baseline) if baseline else None
    print(f"\n{title}" + (f" (speed-up: vs {baseline})" if base else ""))
    print(f"  {'implementation':<50} {'time':>12}" + (f" {'speed-up':>9}" if base else ""))
    for name, seconds, note in rows:
        line = f"  {name:<50} "
        line += f"{seconds * 1e3:>9.2f} ms" if seconds is not None else f"{'n/a':>12}"
        if base:
            line += f" {base / seconds:>8.1f}x" if seconds else f" {'':>9}"
        if note:
            line += f"  {note}"
        print(line)

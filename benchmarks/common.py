"""What the benchmark scripts share: the harness of :mod:`pytal.bench_harness` (the machine
line, interleaved timing with best-of and median, peak memory in a child process) and printing
a table of times."""
from __future__ import annotations

from typing import Optional, Sequence

from pytal.bench_harness import (Timing, environment, load_average,  # noqa: F401 (re-exported)
                                 peak_memory_mib, synchronizer, time_interleaved, time_one)

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

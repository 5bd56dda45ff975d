"""The one benchmark harness: the machine line, interleaved timing with best-of and median, and
peak memory of one call in a child process. It lives in the package because the installed
``pytal bench`` uses it; the scripts under ``benchmarks/`` reach it through
``benchmarks.common``.

Timing (:func:`time_interleaved`): every function is called once first (a warm-up call; its time
is kept as ``first``, the one-time cost: compilation, caches, allocator), then the functions take turns,
one call each per round and the order rotated every round, so that a burst of load from other
processes hits them alike. Each call is synchronised on CUDA. Report ``best`` (the least
disturbed call on a shared machine) or ``median``.

Memory (:func:`peak_memory_mib`): a fresh interpreter imports a factory, builds the inputs,
calls the function once (warm-up: loads code and libraries), then measures one more call: on
CUDA the allocator's peak above what was allocated before the call, on the CPU the growth of the
resident set's high-water mark (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``; large
blocks are mmapped so that freed temporaries leave the resident set).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import torch


def load_average() -> Optional[list[float]]:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment() -> str:
    """One line for a result table: torch version, threads and cores, load average, GPU."""
    cpu = f"{torch.get_num_threads()} CPU threads of {os.cpu_count()} cores"
    load = load_average()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"torch {torch.__version__}, {cpu}, load {' '.join(map(str, load)) if load else '?'}"
            f", {gpu}")


@dataclass(frozen=True)
class Timing:
    """Seconds of the calls of one function: ``first`` (the first warm-up call; None without
    one), ``samples`` (the timed calls, wall), ``cpu_samples`` (the same calls, CPU time of
    this process)."""

    first: Optional[float]
    samples: tuple[float, ...]
    cpu_samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_samples)


def synchronizer(device: Union[str, torch.device]) -> Callable[[], None]:
    """A function that waits for the device's queued work (nothing to wait for on the CPU)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def time_interleaved(fns: Mapping[Any, Callable[[], object]], *,
                     device: Union[str, torch.device] = "cpu",
                     repeats: Union[int, Mapping[Any, int]] = 5, warmup: int = 1,
                     min_seconds: float = 0.0, max_repeats: int = 50,
                     budget_s: float = math.inf) -> dict[Any, Timing]:
    """Time each of ``fns`` (name -> function of no arguments) by turns; see the module doc.

    ``warmup``: untimed calls of each function before the timed ones (the first one's time is
    ``Timing.first``). ``repeats``: timed calls per function (one number, or one per name); more rounds run while
    less than ``min_seconds`` have passed, up to ``max_repeats``; after ``budget_s`` seconds
    no new round starts (every function keeps at least one timed call).
    """
    sync = synchronizer(device)
    wanted = {name: (repeats[name] if isinstance(repeats, Mapping) else repeats) for name in fns}
    first, wall, cpu = {}, {name: [] for name in fns}, {name: [] for name in fns}
    for name, fn in fns.items():
        first[name] = None
        if warmup > 0:
            sync()
            start = time.perf_counter()
            fn()
            sync()
            first[name] = time.perf_counter() - start
    for _ in range(warmup - 1):
        for fn in fns.values():
            fn()
        sync()
    names = list(fns)
    began, rounds = time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - began
        active = [n for n in names if len(wall[n]) < max(1, wanted[n])
                  or (elapsed < min_seconds and len(wall[n]) < max_repeats)]
        if not active or (rounds and elapsed > budget_s):
            break
        shift = rounds % len(active)
        for name in active[shift:] + active[:shift]:
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[name]()
            sync()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        rounds += 1
    return {name: Timing(first[name], tuple(wall[name]), tuple(cpu[name])) for name in fns}


def time_one(fn: Callable[[], object], **options: Any) -> Timing:
    """:func:`time_interleaved` of a single function."""
    return time_interleaved({"fn": fn}, **options)["fn"]


def peak_memory_mib(factory: str, kwargs: Mapping[str, Any], *, device: str = "cpu",
                    threads: int = 1) -> float:
    """MiB by which one call raises memory above what it held before, measured in a fresh
    interpreter after one warm-up call (see the module doc).

    ``factory``: ``"module:function"``, importable from the current folder;
    ``function(**kwargs)`` builds the inputs (JSON-able ``kwargs``) and returns the function of
    no arguments to measure.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "pytal.bench_harness", "--peak-memory",
               json.dumps({"factory": factory, "kwargs": dict(kwargs), "device": device})]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"peak memory of {factory}({kwargs}) failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def _measure_peak_here(factory: str, kwargs: Mapping[str, Any], device: str) -> float:
    module, name = factory.split(":")
    fn = getattr(importlib.import_module(module), name)(**kwargs)
    sync = synchronizer(device)
    fn()                                                    # warm-up
    sync()
    if torch.device(device).type == "cuda":
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync()
        return max(0, torch.cuda.max_memory_allocated() - base) / 2 ** 20
    page_kib = os.sysconf("SC_PAGE_SIZE") / 1024
    with open("/proc/self/statm") as f:
        base_kib = int(f.read().split()[1]) * page_kib
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                        # reset the high-water mark
    fn()
    with open("/proc/self/status") as f:
        peak_kib = float(f.read().split("VmHWM:")[1].split()[0])
    return max(0.0, peak_kib - base_kib) / 1024


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="child process of peak_memory_mib")
    parser.add_argument("--peak-memory", required=True)
    spec = json.loads(parser.parse_args().peak_memory)
    print(json.dumps(_measure_peak_here(spec["factory"], spec["kwargs"], spec["device"])))

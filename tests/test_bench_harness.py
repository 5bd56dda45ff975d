"""pytal.bench_harness: interleaved timing and peak memory in a child process."""
from __future__ import annotations

import itertools
import os
import textwrap

import pytest

from pytal import bench_harness
from pytal.bench_harness import environment, peak_memory_mib, time_interleaved


def test_time_interleaved_rotates_and_counts():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    timings = time_interleaved(fns, repeats={"a": 3, "b": 3, "c": 1}, warmup=2)
    assert calls[:6] == ["a", "b", "c", "a", "b", "c"]            # two warm-up rounds
    rounds = calls[6:]
    assert rounds[:3] == ["a", "b", "c"] and rounds[3:5] == ["b", "a"]  # rotated, c done
    assert [len(timings[k].samples) for k in "abc"] == [3, 3, 1]
    for t in timings.values():
        assert t.first is not None and t.best <= t.median
        assert len(t.cpu_samples) == len(t.samples)


def _fake_perf_counter(step_s):
    """A clock that advances ``step_s`` seconds at every reading, whatever the machine's load."""
    readings = itertools.count()
    return lambda: next(readings) * step_s


@pytest.mark.parametrize("step_s, expected", [(1e-4, 7), (0.05, 1)])
def test_time_interleaved_without_warmup_and_with_a_minimum_time(monkeypatch, step_s, expected):
    # A slow clock reaches min_seconds before max_repeats (only the one wanted repeat runs); a
    # fast one stops at max_repeats.
    monkeypatch.setattr(bench_harness.time, "perf_counter", _fake_perf_counter(step_s))
    count = []
    timing = time_interleaved({"f": lambda: count.append(1)}, repeats=1, warmup=0,
                              min_seconds=0.02, max_repeats=7)["f"]
    assert timing.first is None
    assert len(timing.samples) == len(count) == expected


def test_peak_memory_counts_the_call_not_the_inputs(tmp_path, monkeypatch):
    (tmp_path / "harness_factory.py").write_text(textwrap.dedent("""
        import numpy as np

        def make(mib):
            inputs = np.ones(32 * 2 ** 20 // 8)          # 32 MiB held before the call

            def call():
                temporary = np.ones(mib * 2 ** 20 // 8)
                return float(temporary[-1] + inputs[-1])
            return call
    """))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    small = peak_memory_mib("harness_factory:make", {"mib": 8})
    large = peak_memory_mib("harness_factory:make", {"mib": 64})
    assert 6 <= small <= 16
    assert 60 <= large <= 72


def test_peak_memory_names_a_failing_factory():
    with pytest.raises(RuntimeError, match="no_such_module"):
        peak_memory_mib("no_such_module:make", {})


def test_environment_names_threads_cores_and_load():
    line = environment()
    assert "CPU threads of" in line and "cores" in line and "load" in line

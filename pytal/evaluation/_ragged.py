"""Small vectorised helpers for arrays cut into consecutive runs (segments of a flat array)."""
from __future__ import annotations

import numpy as np


def ragged_arange(sizes: np.ndarray) -> np.ndarray:
    """``concatenate([arange(n) for n in sizes])``: the position of each element in its run."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def run_suffix_max(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """For each element, the max of it and the later elements of its run (exact).

    ``values`` (n,) is cut into consecutive runs of ``sizes`` (all > 0). The values are
    replaced by their integer ranks and each run is lifted above all later runs, so one
    reversed ``maximum.accumulate`` never carries a maximum across runs.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    levels, rank = np.unique(values, return_inverse=True)
    lift = np.repeat((len(sizes) - 1 - np.arange(len(sizes))) * len(levels), sizes)
    suffix = np.maximum.accumulate((rank + lift)[::-1])[::-1]
    return levels[suffix - lift]


def run_position(keys: np.ndarray) -> np.ndarray:
    """For (n,) ``keys`` whose equal values are consecutive: each element's position in its run."""
    index = np.arange(len(keys))
    starts = np.r_[True, keys[1:] != keys[:-1]]
    return index - np.maximum.accumulate(np.where(starts, index, 0))

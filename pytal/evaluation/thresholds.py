"""tIoU threshold sets: the presets of the usual datasets (defined here only), the preset of a
dataset name, the named sub-averages reported beside the mean, and the ``start:stop:step``
notation of the CLI."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

#: THUMOS14 protocol: 0.3, 0.4, ..., 0.7.
THUMOS14_TIOU = (0.3, 0.4, 0.5, 0.6, 0.7)
#: ActivityNet protocol: 0.5, 0.55, ..., 0.95.
ACTIVITYNET_TIOU = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
#: EPIC-Kitchens protocol: 0.1, 0.2, ..., 0.5.
EPIC_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5)
#: MultiTHUMOS protocol: 0.1, 0.2, ..., 0.9.
MULTITHUMOS_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: HACS protocol: ActivityNet's, 0.5, 0.55, ..., 0.95.
HACS_TIOU = ACTIVITYNET_TIOU

PRESETS = {"thumos14": THUMOS14_TIOU, "thumos": THUMOS14_TIOU,
           "activitynet": ACTIVITYNET_TIOU, "anet": ACTIVITYNET_TIOU, "epic": EPIC_TIOU,
           "multithumos": MULTITHUMOS_TIOU, "hacs": HACS_TIOU}


def dataset_tiou_thresholds(name: Optional[str]) -> Optional[tuple[float, ...]]:
    """The preset of a dataset name: names starting with ``thumos`` -> THUMOS14's,
    ``multithumos`` -> MultiTHUMOS', ``activitynet`` or ``anet`` -> ActivityNet's, ``epic`` ->
    EPIC-Kitchens', ``hacs`` -> HACS' (case-insensitive, e.g. ``thumos14_synthetic``,
    ``activitynet13``, ``epic_kitchens_100``); else None."""
    text = (name or "").strip().lower()
    for prefix in ("thumos", "multithumos", "activitynet", "anet", "epic", "hacs"):
        if text.startswith(prefix):
            return PRESETS[prefix]
    return None


#: Named sub-averages: a result whose thresholds include every threshold of one of these sets,
#: and more, also reports the mean mAP over that set under its name. THUMOS14 evaluated at
#: 0.1:0.7 (TAL-MTS, AFSD's tables) thus gives Avg{0.1:0.5} and Avg{0.3:0.7}.
SUB_AVERAGES = {"0.1:0.5": EPIC_TIOU, "0.3:0.7": THUMOS14_TIOU}


def sub_average_sets(thresholds: Sequence[float]) -> dict[str, list[int]]:
    """Name -> indices into ``thresholds`` of each :data:`SUB_AVERAGES` set they strictly
    contain (compared to 1e-6), in the order of :data:`SUB_AVERAGES`."""
    found = {}
    for name, subset in SUB_AVERAGES.items():
        index = [next((i for i, t in enumerate(thresholds) if abs(t - s) < 1e-6), -1)
                 for s in subset]
        if -1 not in index and len(subset) < len(thresholds):
            found[name] = index
    return found

ThresholdSpec = Union[str, float, Sequence[float]]


def tiou_range(start: float, stop: float, step: float) -> list[float]:
    """``start, start + step, ..., stop`` (inclusive), rounded to 10 decimals so that
    ``tiou_range(0.3, 0.7, 0.1)`` is exactly ``[0.3, 0.4, 0.5, 0.6, 0.7]``."""
    if not step > 0:
        raise ValueError(f"tIoU step must be > 0, got {step!r}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count < 1:
        raise ValueError(f"empty tIoU range {start}:{stop}:{step}")
    return [round(start + i * step, 10) for i in range(count)]


def parse_tiou_thresholds(spec: ThresholdSpec) -> list[float]:
    """Thresholds from a preset name (``"thumos14"``, ``"activitynet"``), ``"start:stop:step"``,
    ``"0.3,0.5,0.7"``, a number, or a sequence of numbers. Each must lie in (0, 1]."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in PRESETS:
            values = list(PRESETS[text])
        elif ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError(f"tIoU range must be 'start:stop:step', got {spec!r}")
            try:
                values = tiou_range(*(float(p) for p in parts))
            except ValueError as err:
                raise ValueError(f"bad tIoU range {spec!r}: {err}") from None
        else:
            try:
                values = [float(p) for p in text.split(",")]
            except ValueError:
                raise ValueError(f"tIoU thresholds must be a preset {sorted(PRESETS)}, "
                                 f"'start:stop:step' or comma-separated numbers, got {spec!r}") from None
    elif isinstance(spec, (int, float)):
        values = [float(spec)]
    else:
        values = [float(v) for v in spec]
    if not values:
        raise ValueError("no tIoU thresholds given")
    bad = [v for v in values if not 0.0 < v <= 1.0]
    if bad:
        raise ValueError(f"tIoU thresholds must lie in (0, 1], got {bad}")
    return values

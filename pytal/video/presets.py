"""Extraction presets: the published feature recipes (sources in docs/video.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Preset", "PRESETS", "get_preset", "format_presets"]


@dataclass(frozen=True)
class Preset:
    """backbone, fps (None: each video's own rate), num_frames per window, stride in frames
    between windows, and where the recipe comes from."""

    name: str
    backbone: str
    fps: Optional[float]
    num_frames: int
    stride: int
    source: str


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("thumos14_i3d", "i3d", None, 16, 4,
           "THUMOS14 I3D features as used by ActionFormer / TriDet: 16-frame windows, stride 4, "
           "the video's frame rate (RGB stream; the released files add the flow stream)"),
    Preset("activitynet_r2plus1d", "r2plus1d_18", 15.0, 16, 16,
           "ActivityNet TSP-style features: 16-frame clips at 15 fps, stride 16 (TSP uses "
           "R(2+1)D-34; r2plus1d_18 is torchvision's R(2+1)D)"),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]


def format_presets() -> str:
    """One line per preset, for ``pytal extract --list-presets``."""
    lines = []
    for p in PRESETS.values():
        fps = "video fps" if p.fps is None else f"{p.fps:g} fps"
        lines.append(f"{p.name}: {p.backbone}, {p.num_frames} frames, stride {p.stride}, {fps}"
                     f"  ({p.source})")
    return "\n".join(lines)

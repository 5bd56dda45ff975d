"""Frames or videos -> the packed I3D spatial feature maps TAL-MTS's ``features`` backbone
reads (:mod:`pytal.backbones.feature_maps`): one ``<out>/<video_id>.npy`` per video, (ceil(T/8),
D) float32, D = 2 * 832 * (S/16)^2 + 1024 * (S/32)^2 per stream (69,120 for S = 96), RGB
then flow, plus ``<out>/maps.json`` recording the settings.

Inputs are frame-video files (``<video_id>.npy`` uint8 (T, H, W, 3), the layout of
``dataset.frame_dir``; a folder gives its ``.npy`` files), centre-cropped to ``size``, or video
files decoded at ``fps``, their shorter side resized to ``resize`` and centre-cropped to
``size``. The flow stream reads ``<flow_dir>/<video_id>.npy`` uint8 (T, H, W, 2) on the same
frames (128 = no motion), centre-cropped likewise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from pytal.backbones.feature_maps import build_i3d_stream, i3d_video_maps
from pytal.io.atomic import save_npy
from pytal.io.frames import load_frames
from pytal.io.jsonio import read_json, write_json
from pytal.video.decode import FrameTransform, VideoError, iter_frames
from pytal.video.extract import ExtractionReport, list_videos, video_id_of

__all__ = ["MAPS_FORMAT", "MapsSettings", "list_map_inputs", "write_feature_maps"]

MAPS_FORMAT = "pytal-i3d-maps/1"
SETTINGS_NAME = "maps.json"


@dataclass(frozen=True)
class MapsSettings:
    """size: square input frames in pixels (multiple of 32); fps, resize: decoding of video
    inputs (frames per second, shorter side before the crop); chunk: frames per I3D call
    (multiple of 8); streams: ``("rgb",)`` or ``("rgb", "flow")``."""

    size: int = 96
    fps: float = 10.0
    resize: int = 112
    chunk: int = 256
    streams: tuple[str, ...] = ("rgb",)

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 pixels, got {self.size}")
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least size ({self.size})")
        if self.chunk < 8 or self.chunk % 8:
            raise ValueError(f"chunk must be a positive multiple of 8 frames, got {self.chunk}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.streams not in (("rgb",), ("rgb", "flow")):
            raise ValueError(f"streams must be rgb or rgb + flow, got {list(self.streams)}")


def list_map_inputs(inputs: Sequence[str]) -> list[str]:
    """Frame files (``.npy``) and videos from paths and folders: a folder holding ``.npy``
    files gives those (sorted), another folder its videos (:func:`list_videos`)."""
    out: list[str] = []
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            frames = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".npy"))
            out += frames if frames else list_videos([path])
        elif path.endswith(".npy") and os.path.isfile(path):
            out.append(path)
        else:
            out += list_videos([path])
    return out


def _centre(frames: np.ndarray, size: int, path: str) -> np.ndarray:
    _, h, w, _ = frames.shape
    if h < size or w < size:
        raise ValueError(f"frame file {path}: frames of {h}x{w} are smaller than size {size}")
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(frames[:, y:y + size, x:x + size])


def _rgb_frames(path: str, s: MapsSettings) -> np.ndarray:
    if path.endswith(".npy"):
        return _centre(load_frames(path, 3), s.size, path)
    transform = FrameTransform((s.resize,), (s.size, s.size))
    return np.stack(list(iter_frames(path, fps=s.fps, transform=transform)))


def write_feature_maps(inputs: Sequence[str], out_dir: str, settings: MapsSettings, *,
                       flow_dir: str = "", weights: Optional[str] = None,
                       flow_weights: Optional[str] = None, device: str = "cpu",
                       log: Callable[[str], None] = print) -> ExtractionReport:
    """Write the maps of every input (module docstring) to ``out_dir`` (atomically, one file
    per video) and ``out_dir/maps.json``. ``weights`` / ``flow_weights``: I3D weights of each
    stream (paths, ``"random"``, or None for the released file in the torch cache). Resumable:
    a video whose file exists is skipped; a folder written with other settings or weights is
    refused (ValueError naming the setting). A video that fails is reported, the others go
    on."""
    if ("flow" in settings.streams) != bool(flow_dir):
        raise ValueError("give flow_dir exactly when the streams include flow")
    paths = list_map_inputs(inputs)
    nets = {"rgb": build_i3d_stream("rgb", weights, device=device)}
    if flow_dir:
        nets["flow"] = build_i3d_stream("flow", flow_weights, device=device)
    record = {"format": MAPS_FORMAT, "size": settings.size, "fps": settings.fps,
              "resize": settings.resize, "chunk": settings.chunk,
              "streams": list(settings.streams), "map_channels": [832, 1024],
              "map_sizes": [settings.size // 16, settings.size // 32], "frames_per_row": 8,
              "weights": {s: nets[s][1] for s in settings.streams}}
    os.makedirs(out_dir, exist_ok=True)
    record_path = os.path.join(out_dir, SETTINGS_NAME)
    if os.path.isfile(record_path):
        old, _ = read_json(record_path, what="maps settings")
        for key in sorted(set(old) | set(record)):
            if key not in ("fps", "resize") and old.get(key) != record.get(key):
                raise ValueError(f"{record_path}: the folder holds maps with {key}="
                                 f"{old.get(key)!r}, this run uses {key}={record.get(key)!r}; "
                                 "use another output folder")
    write_json(record_path, record, indent=2)
    report = ExtractionReport()
    for n, path in enumerate(paths, 1):
        vid = video_id_of(path)
        target = os.path.join(out_dir, vid + ".npy")
        if os.path.isfile(target):
            report.skipped.append(vid)
            continue
        try:
            rgb = _rgb_frames(path, settings)
            rows = [i3d_video_maps(nets["rgb"][0], rgb, chunk=settings.chunk, device=device)]
            if flow_dir:
                flow_path = os.path.join(flow_dir, vid + ".npy")
                flow = _centre(load_frames(flow_path, 2), settings.size, flow_path)
                if flow.shape[0] != rgb.shape[0]:
                    raise ValueError(f"flow file {flow_path}: {flow.shape[0]} frames, the RGB "
                                     f"frames have {rgb.shape[0]}")
                rows.append(i3d_video_maps(nets["flow"][0], flow, chunk=settings.chunk,
                                           device=device))
        except (VideoError, ValueError, FileNotFoundError) as err:
            report.failed.append((path, str(err)))
            log(f"[{n}/{len(paths)}] {vid}: FAILED: {err}")
            continue
        packed = torch.cat(rows, dim=1).numpy().astype(np.float32, copy=False)
        save_npy(target, packed)
        report.written.append(vid)
        log(f"[{n}/{len(paths)}] {vid}: {rgb.shape[0]} frames -> {packed.shape[0]} x "
            f"{packed.shape[1]} map rows")
    return report

"""Synthetic frame videos for :class:`~pytal.data.frames.FrameClipDataset`: tiny RGB (and
optionally flow) videos whose actions are learnable patterns, and optionally the spatial
feature maps of TAL-MTS's ``features`` backbone for the same layout.

    from pytal.data.synthetic.frames import write_frame_dataset
    ds = write_frame_dataset("/tmp/frames", num_videos=64, num_classes=3, size=32, fps=10, seed=0)

    python -m pytal.data.synthetic.frames DIR [--num-videos N] [--seed S] [--flow] [--maps]

Writes ``<root>/annotations.json`` (ActivityNet-style, ``label_id`` on every annotation, every
video with ``fps``), ``<root>/frames/<video_id>.npy`` uint8 (T, size, size, 3) and, with
``flow=True``, ``<root>/flow/<video_id>.npy`` uint8 (T, size, size, 2). Background: grey noise.
During an action of class c a bright square of colour ``c % 3`` (a primary colour: 250 in
that channel, 20 in the others), side ``size / 4``, sits in row ``c // 3`` of the frame and
slides right by one pixel per frame; its flow is ``(160, 128)`` inside the square, 128 (no
motion) elsewhere. The square fades in over the first ``fade`` of the action and out over the
last (blended with the background, flow 128 + 32 x strength), so the boundaries are soft. The
output is a deterministic function of the arguments.

With ``maps=True``, ``<root>/maps/<video_id>.npy`` holds packed maps
(:mod:`pytal.backbones.feature_maps`, one row per 8 frames, ``ceil(T / 8)`` rows) with
``map_channels`` channels and the map sizes of ``size`` pixels (``size / 16``, ``size / 32``):
Gaussian noise (std 0.5), plus, at each Mixed_4f-like step (4 frames) and Mixed_5c-like step
(8 frames), 2 x the fraction of the step's frames inside an action of class c added to channel
c at the cells of the class's square row. A plain feature folder for ``dataset.feature_dir``
(``feat_stride: 8``, ``num_frames: 8``).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from pytal.backbones.feature_maps import FRAMES_PER_ROW, pack_feature_maps
from pytal.data.synthetic import _annotation_json
from pytal.data.synthetic.layout import class_names, random_layout
from pytal.io.atomic import save_npy
from pytal.io.jsonio import write_json

__all__ = ["FrameVideos", "write_frame_dataset"]


@dataclass(frozen=True)
class FrameVideos:
    """What :func:`write_frame_dataset` wrote (``flow_dir`` / ``maps_dir`` "" without them)."""

    root: str
    annotation_file: str
    frame_dir: str
    flow_dir: str
    class_names: list[str]
    fps: float
    size: int
    maps_dir: str = ""
    map_channels: tuple[int, int] = (16, 32)


def _strength(t: int, first: int, last: int, fade: float) -> float:
    """How much of the square frame ``t`` of an action on frames [first, last) shows: ramps
    up over the first and down over the last ``fade`` of the action, 1 in between."""
    frames = max(1, int(round(fade * (last - first))))
    return min(1.0, (t - first + 1) / frames, (last - t) / frames) if fade > 0 else 1.0


def _video(spec, size: int, fps: float, rng: np.random.Generator, flow: bool, fade: float):
    frames_n = int(round(spec.duration * fps))
    frames = rng.integers(70, 130, (frames_n, size, size, 3), dtype=np.uint8)
    motion = np.full((frames_n, size, size, 2), 128, np.uint8) if flow else None
    side = max(2, size // 4)
    square = np.full(3, 20.0)
    for (start, end), c in zip(spec.segments.tolist(), spec.labels.tolist()):
        row = (c // 3) * side % (size - side + 1)
        first, last = int(round(start * fps)), min(frames_n, int(round(end * fps)))
        square[:] = 20.0
        square[c % 3] = 250.0
        for t in range(first, last):
            x = (t - first) % (size - side + 1)
            a = _strength(t, first, last, fade)
            patch = frames[t, row:row + side, x:x + side]
            patch[:] = np.rint((1 - a) * patch + a * square).astype(np.uint8)
            if motion is not None:
                motion[t, row:row + side, x:x + side, 0] = int(round(128 + 32 * a))
    return frames, motion


def _maps(spec, frames_n: int, size: int, fps: float, channels: tuple[int, int],
          rng: np.random.Generator) -> np.ndarray:
    """Packed synthetic maps of one video (module docstring): (ceil(frames_n / 8), D)."""
    rows = -(-frames_n // FRAMES_PER_ROW)
    side = max(2, size // 4)
    maps = []
    for c_out, cells, per_step in ((channels[0], size // 16, 4), (channels[1], size // 32, 8)):
        steps = rows * FRAMES_PER_ROW // per_step
        m = rng.normal(0.0, 0.5, (c_out, steps, cells, cells)).astype(np.float32)
        frame_of_step = np.arange(steps * per_step).reshape(steps, per_step)
        for (start, end), c in zip(spec.segments.tolist(), spec.labels.tolist()):
            first, last = int(round(start * fps)), min(frames_n, int(round(end * fps)))
            inside = ((frame_of_step >= first) & (frame_of_step < last)).mean(axis=1)
            cell = ((c // 3) * side % (size - side + 1)) * cells // size
            m[c % c_out, :, cell, :] += 2.0 * inside.astype(np.float32)[:, None]
        maps.append(torch.from_numpy(m))
    return pack_feature_maps(*maps).numpy()


def write_frame_dataset(root: Union[str, os.PathLike], *, num_videos: int = 64,
                        num_classes: int = 3, size: int = 32, fps: float = 10.0,
                        duration_range: tuple[float, float] = (16.0, 30.0),
                        action_seconds: tuple[float, float] = (2.0, 6.0),
                        actions_per_video: tuple[int, int] = (1, 3), val_fraction: float = 0.5,
                        fade: float = 0.25, flow: bool = False, maps: bool = False,
                        map_channels: tuple[int, int] = (16, 32), seed: int = 0) -> FrameVideos:
    """Write the dataset (see the module docstring) under ``root``; return where it is."""
    if maps and size % 32:
        raise ValueError(f"size: the maps need frames of a multiple of 32 pixels, got {size}")
    if num_classes > 3 * max(1, size // max(2, size // 4)):
        raise ValueError(f"num_classes: at most {3 * (size // max(2, size // 4))} patterns fit "
                         f"frames of {size} pixels, got {num_classes}")
    rng = np.random.default_rng(seed)
    specs = random_layout(num_videos, num_classes, rng=rng, fps=fps,
                          duration_range=duration_range, actions_per_video=actions_per_video,
                          action_seconds=action_seconds, overlap_prob=0.0, multi_label_prob=0.0,
                          val_fraction=val_fraction)
    root = os.fspath(root)
    frame_dir = os.path.join(root, "frames")
    flow_dir = os.path.join(root, "flow") if flow else ""
    maps_dir = os.path.join(root, "maps") if maps else ""
    map_rng = np.random.default_rng([seed, 1])     # the frames stay those of maps=False
    for folder in filter(None, (frame_dir, flow_dir, maps_dir)):
        os.makedirs(folder, exist_ok=True)
    for spec in specs:
        frames, motion = _video(spec, size, fps, rng, flow, fade)
        save_npy(os.path.join(frame_dir, f"{spec.video_id}.npy"), frames)
        if motion is not None:
            save_npy(os.path.join(flow_dir, f"{spec.video_id}.npy"), motion)
        if maps:
            save_npy(os.path.join(maps_dir, f"{spec.video_id}.npy"),
                     _maps(spec, frames.shape[0], size, fps, map_channels, map_rng))
    names = class_names(num_classes)
    annotation_file = os.path.join(root, "annotations.json")
    write_json(annotation_file, _annotation_json(specs, names))
    return FrameVideos(root, annotation_file, frame_dir, flow_dir, names, float(fps), size,
                       maps_dir, tuple(map_channels))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m pytal.data.synthetic.frames DIR``: write the dataset with the defaults of
    :func:`write_frame_dataset` (those of ``pytal:resources/talmts_synthetic.json``)."""
    parser = argparse.ArgumentParser(prog="python -m pytal.data.synthetic.frames",
                                     description="Write synthetic frame videos (and maps).")
    parser.add_argument("root", metavar="DIR")
    parser.add_argument("--num-videos", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flow", action="store_true", help="also write optical flow")
    parser.add_argument("--maps", action="store_true",
                        help="also write the packed feature maps of the features backbone")
    args = parser.parse_args(argv)
    ds = write_frame_dataset(args.root, num_videos=args.num_videos, seed=args.seed,
                             flow=args.flow, maps=args.maps)
    print(f"{args.num_videos} videos -> {ds.frame_dir}" + (f", {ds.flow_dir}" if ds.flow_dir else "")
          + (f", {ds.maps_dir}" if ds.maps_dir else "") + f"; annotations {ds.annotation_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

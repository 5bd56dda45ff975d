"""FrameClipDataset: frame videos + ActivityNet-style annotations -> training items whose
``feats`` are flattened frames (one step per frame).

Files: ``<frame_dir>/<video_id>.npy`` uint8 (T, H, W, 3) RGB frames sampled at ``frame_fps``;
optionally ``<flow_dir>/<video_id>.npy`` uint8 (T, H, W, 2) optical flow (128 = no motion) on
the same frames. Each step of ``feats`` is one frame flattened in (k, y, x) order, RGB channels
then flow channels: ``feats`` is (K * S * S, T) with pixel values in [0, 255], K = 3 or 5.

Training items are clips of ``max_seq_len`` frames (the clip length): with ``clip_stride`` the
fixed clips every that many frames that hold a whole action (AFSD's rule,
:mod:`pytal.data.clips`), else one random temporal crop per video; then a random
``frame_crop`` x ``frame_crop`` spatial crop and a horizontal flip with probability 1/2 (the
flow's x component is mirrored: ``255 - u``). Evaluation items are whole videos, centre-cropped.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np
import torch

from pytal.data.dataset import FeatureDataset
from pytal.io.frames import load_frames

__all__ = ["FrameClipDataset", "flatten_frames"]


def flatten_frames(frames: torch.Tensor) -> torch.Tensor:
    """(T, S, S, K) -> (K * S * S, T) float32, each column a frame in (k, y, x) order."""
    t = frames.shape[0]
    return frames.permute(3, 1, 2, 0).reshape(-1, t).to(torch.float32)


class FrameClipDataset(FeatureDataset):
    """Frame videos (see the module docstring). Arguments as :class:`FeatureDataset` (whose
    ``feature_dir`` is the frame folder, ``feat_stride = num_frames = 1``), plus ``flow_dir``
    (or ""), ``frame_fps`` (the frame rate of the files, replacing the annotation's; None: each
    video's annotation ``fps``, e.g. ActivityNet resampled to a fixed frame count) and
    ``frame_crop`` (square crop size in pixels, or None: whole frames, which must be square)."""

    def __init__(self, annotation_file: Any, frame_dir: str, *, flow_dir: str = "",
                 frame_fps: Optional[float] = None, frame_crop: Optional[int] = None, **kwargs: Any) -> None:
        self.flow_dir, self.frame_fps, self.frame_crop = flow_dir, float(frame_fps), frame_crop
        kwargs.setdefault("file_ext", ".npy")
        super().__init__(annotation_file, frame_dir, feat_stride=1.0, num_frames=1.0, **kwargs)

    @classmethod
    def from_config(cls, dataset: Any, *, training: bool,
                    generator: Optional[torch.Generator] = None) -> "FrameClipDataset":
        """The dataset of a config's ``dataset`` section with ``frame_dir`` set."""
        return cls(dataset.annotation_file, dataset.frame_dir, flow_dir=dataset.flow_dir,
                   frame_fps=dataset.frame_fps, frame_crop=dataset.frame_crop,
                   default_fps=dataset.default_fps,
                   subset=dataset.train_subset if training else dataset.val_subset,
                   file_prefix=dataset.file_prefix or "", training=training,
                   max_seq_len=dataset.max_seq_len if training else None,
                   trunc_thresh=dataset.trunc_thresh, input_dim=dataset.input_dim,
                   generator=generator, clip_stride=dataset.clip_stride if training else None,
                   class_agnostic=dataset.class_agnostic)

    def _fps(self, video: Any) -> float:
        return float(self.frame_fps) if self.frame_fps is not None else super()._fps(video)

    def _draw(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def read(self, path: str, steps: Optional[slice] = None) -> torch.Tensor:
        frames = load_frames(path, 3)
        if self.flow_dir:
            flow_path = os.path.join(self.flow_dir, os.path.basename(path))
            flow = load_frames(flow_path, 2)
            if flow.shape[:3] != frames.shape[:3]:
                raise ValueError(f"flow file {flow_path}: shape {tuple(flow.shape[:3])} differs "
                                 f"from the frames' {tuple(frames.shape[:3])}")
        if steps is not None:                   # read only the clip's frames of the mapped file
            frames = frames[steps]
            flow = flow[steps] if self.flow_dir else None
        if self.flow_dir:
            frames = np.concatenate((frames, flow), axis=-1)
        _, h, w, _ = frames.shape
        size = self.frame_crop if self.frame_crop is not None else h
        if size > h or size > w or (self.frame_crop is None and h != w):
            raise ValueError(f"frame file {path}: frames of {h}x{w} cannot give {size}x{size} "
                             "crops (set dataset.frame_crop)")
        if self.training:
            y, x = self._draw(h - size + 1), self._draw(w - size + 1)
        else:
            y, x = (h - size) // 2, (w - size) // 2
        clip = torch.from_numpy(np.array(frames[:, y:y + size, x:x + size]))
        if self.training and self._draw(2):
            clip = clip.flip(2)
            if clip.shape[-1] == 5:
                clip[..., 3] = 255 - clip[..., 3]
        return flatten_frames(clip)

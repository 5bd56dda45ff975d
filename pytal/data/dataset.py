"""FeatureDataset: pre-extracted video features + ActivityNet-style annotations -> training items.

One class covers the usual TAL benchmarks as configurations:

* THUMOS14-style (variable length, fixed stride)::

      FeatureDataset(ann, feats, subset="validation", feat_stride=4, num_frames=16,
                     training=True, max_seq_len=2304, trunc_thresh=0.5, crop_ratio=(0.9, 1.0))

  Videos keep their length; for training, a sequence longer than ``max_seq_len`` is randomly
  cropped to it (and with ``crop_ratio`` shorter ones to a random fraction of their length),
  keeping segments that retain ``trunc_thresh`` of their length, as ActionFormer does.

* ActivityNet-style (every video resized to a fixed length)::

      FeatureDataset(ann, feats, subset="training", resize_length=128, default_fps=30)

  Features are linearly interpolated to ``resize_length`` steps; the grid is then derived from
  the duration: step ``i`` is centred at ``(i + 0.5) * duration / resize_length`` seconds
  (``feat_stride = feat_num_frames = duration * fps / resize_length`` frames).

* Fixed training clips (AFSD's and TAL-MTS' training)::

      FeatureDataset(ann, frames, subset="validation", feat_stride=1, num_frames=1,
                     training=True, max_seq_len=256, clip_stride=30)

  With ``clip_stride`` set, a training dataset's items are not videos but the windows of
  ``max_seq_len`` steps starting every ``clip_stride`` steps (the last one ending at the
  video's end) that hold at least one whole action (:mod:`pytal.data.clips`); each window's
  segments are clipped to it as a random crop's are.

* Segments that reach outside their video's ``[0, duration]`` (real files have some: THUMOS14
  has 8 past the end) are clipped for training to the features' window, and dropped when less
  than ``trunc_thresh`` of them remains inside; a training dataset warns once with their count.

* Multi-label / overlapping (EPIC-Kitchens, HACS, MultiTHUMOS): either of the above; overlapping
  segments are kept, and an annotation with several labels becomes one row per label.

Label ids follow :func:`pytal.data.annotations.resolve_labels` (file ``label_id`` if every
annotation has one, else the caller's ``classes``, else sorted label names); ``label_source``
says which was used. ``class_agnostic=True`` gives every row label 0 (a one-class detector
trained on a multi-class file); ``class_names`` stay the file's.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from pytal.data.annotations import (Annotations, AnnotationError, PathOrDict, VideoAnnotation,
                                    load_annotations, resolve_labels)
from pytal.data.clips import training_clips
from pytal.data.crop import clip_to_window, crop_length, random_crop
from pytal.data.features import feature_path, load_features, resize_features
from pytal.data.timing import FeatureGrid


class FeatureDataset(Dataset):
    """Features of one or more subsets of an annotation file, one item per video.

    Args:
        annotation_file: ActivityNet-style JSON path (or loaded dict).
        feature_dir: folder of ``<file_prefix><video_id><file_ext>`` files, (T, C) each.
        subset: subset name, or several.
        feat_stride, num_frames: frames between features and frames per feature of the files on
            disk. Required unless ``resize_length`` is set (then only used to check lengths).
        default_fps: frame rate for videos whose annotation has no ``fps``.
        resize_length: ActivityNet-style fixed length (steps); ``None`` keeps lengths.
        training: crop and clip segments as described in the module docstring.
        max_seq_len, trunc_thresh, crop_ratio: training crops (steps, fraction, (lo, hi)).
        classes: class names to use for label ids when the file has no ``label_id``.
        label_space: the labelling to read from a file with several (EPIC-KITCHENS-100's
            ``"verb"`` / ``"noun"``; :mod:`pytal.io.annotations`).
        input_dim: expected feature channels C (checked on load) or ``None``.
        length_tolerance: allowed relative difference between a file's length and the one
            implied by the duration (``None`` disables the check; 1 step of slack is added).
        skip_missing: drop videos without a feature file instead of raising.
        class_agnostic: every item's ``labels`` are 0 (one class), whatever the file says.
        clip_stride: training only: fixed clips of ``max_seq_len`` steps every that many steps
            instead of one random crop per video (module docstring); None: random crops.
        generator: RNG for training crops (default: torch's global RNG, which DataLoader
            seeds differently in each worker; a generator given here is copied into every
            worker, so use it with ``num_workers=0``).

    Items (dict): ``video_id`` str; ``feats`` (C, T) float32; ``segments`` (N, 2) float32 in
    feature steps of ``feats``; ``labels`` (N,) int64; ``fps``, ``duration`` (seconds),
    ``feat_stride``, ``feat_num_frames`` (frames, floats) describing the grid of ``feats``.
    """

    def __init__(self, annotation_file: PathOrDict, feature_dir: Union[str, os.PathLike], *,
                 subset: Union[str, Sequence[str]],
                 feat_stride: Optional[float] = None, num_frames: Optional[float] = None,
                 default_fps: Optional[float] = None, file_prefix: str = "",
                 file_ext: str = ".npy", resize_length: Optional[int] = None,
                 training: bool = False, max_seq_len: Optional[int] = None,
                 trunc_thresh: float = 0.5, crop_ratio: Optional[Sequence[float]] = None,
                 classes: Optional[Sequence[str]] = None, input_dim: Optional[int] = None,
                 length_tolerance: Optional[float] = 0.1, skip_missing: bool = False,
                 generator: Optional[torch.Generator] = None,
                 label_space: Optional[str] = None, clip_stride: Optional[int] = None,
                 class_agnostic: bool = False) -> None:
        if resize_length is None and (feat_stride is None or num_frames is None):
            raise ValueError("feat_stride and num_frames are required unless resize_length is "
                             f"set; got feat_stride={feat_stride!r}, num_frames={num_frames!r}")
        if (feat_stride is None) != (num_frames is None):
            raise ValueError("give both feat_stride and num_frames, or neither")
        if resize_length is not None and int(resize_length) < 1:
            raise ValueError(f"resize_length must be a positive number of steps, got {resize_length!r}")
        if max_seq_len is not None and int(max_seq_len) < 1:
            raise ValueError(f"max_seq_len must be a positive number of steps, got {max_seq_len!r}")
        if crop_ratio is not None and not (len(crop_ratio) == 2 and 0 < crop_ratio[0] <= crop_ratio[1]):
            raise ValueError(f"crop_ratio must be (lo, hi) with 0 < lo <= hi, got {crop_ratio!r}")
        if not 0.0 <= trunc_thresh <= 1.0:
            raise ValueError(f"trunc_thresh must be in [0, 1], got {trunc_thresh!r}")
        if clip_stride is not None and (int(clip_stride) < 1 or max_seq_len is None):
            raise ValueError("clip_stride must be a positive number of steps, with max_seq_len "
                             f"(the clip length) set; got clip_stride={clip_stride!r}, "
                             f"max_seq_len={max_seq_len!r}")

        self.feature_dir = os.fspath(feature_dir)
        self.file_prefix, self.file_ext = file_prefix, file_ext
        self.feat_stride, self.num_frames = feat_stride, num_frames
        self.default_fps = default_fps
        self.resize_length = None if resize_length is None else int(resize_length)
        self.training = training
        self.max_seq_len = None if max_seq_len is None else int(max_seq_len)
        self.trunc_thresh = float(trunc_thresh)
        self.crop_ratio = None if crop_ratio is None else (float(crop_ratio[0]), float(crop_ratio[1]))
        self.input_dim = input_dim
        self.length_tolerance = length_tolerance
        self.generator = generator
        self.class_agnostic = bool(class_agnostic)

        self.annotations: Annotations = load_annotations(annotation_file, label_space=label_space)
        self.class_names, self.label_source = resolve_labels(self.annotations, classes)
        self._label_index = {n: i for i, n in enumerate(self.class_names) if n}
        self.subsets = [subset] if isinstance(subset, str) else list(subset)
        if not self.subsets:
            raise ValueError("subset is empty: give a subset name such as "
                             f"{self.annotations.subsets[0]!r}")
        videos = [v for name in self.subsets for v in self.annotations.subset(name)]
        self.videos: list[VideoAnnotation] = self._with_features(videos, skip_missing)
        for video in self.videos:
            self._fps(video)  # fail early on a video without a frame rate
        if training and not any(len(v.label_names) for v in self.videos):
            raise AnnotationError(f"{self.annotations.source}: subset {self.subsets} has no "
                                  "annotated video to train on")
        if training:
            self._warn_segments_outside_videos()
        #: training clips ``(video index, start step)``, or None: one item per video
        self.clips: Optional[list[tuple[int, int]]] = None
        if training and clip_stride is not None:
            self.clips = self._training_clips(int(clip_stride))

    def _training_clips(self, stride: int) -> list[tuple[int, int]]:
        """The fixed clips (:func:`pytal.data.clips.training_clips`); one warning naming the
        videos that give none (no action fits wholly in a clip)."""
        lengths, segments, offsets = [], [], set()
        for index, video in enumerate(self.videos):
            grid = self.grid(index)
            lengths.append(self.num_steps(index))
            if self.resize_length is None:
                self._check_length(video, lengths[-1], self.path(video.video_id))
            segments.append(torch.from_numpy(grid.to_steps(video.segments)).to(torch.float32)
                            .reshape(-1, 2))
            offsets.add(grid.offset)
        offset = max(offsets) if offsets else 0.5
        clips = training_clips(lengths, segments, window=self.max_seq_len, stride=stride,
                               offset=offset)
        if not clips:
            raise AnnotationError(f"{self.annotations.source}: subset {self.subsets} gives no "
                                  f"training clip of {self.max_seq_len} steps holding a whole "
                                  "action; raise max_seq_len or unset clip_stride")
        used = {v for v, _ in clips}
        unused = [v.video_id for i, v in enumerate(self.videos) if i not in used]
        if unused:
            warnings.warn(f"{self.annotations.source}: {len(unused)} of {len(self.videos)} "
                          f"videos of subset {self.subsets} give no training clip (no action "
                          f"lies wholly in a clip of {self.max_seq_len} steps; first: "
                          f"{unused[0]!r})", stacklevel=3)
        return clips

    def num_steps(self, index: int) -> int:
        """Steps of item ``index``'s video as :meth:`__getitem__` sees them before cropping
        (a ``.npy`` file's length is read from its header)."""
        if self.resize_length is not None:
            return self.resize_length
        path = self.path(self.videos[index].video_id)
        if path.endswith(".npy"):
            try:
                return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
            except (OSError, ValueError) as err:
                raise ValueError(f"feature file {path}: not a readable .npy file ({err})") from None
        return int(self.read(path).shape[1])

    def _warn_segments_outside_videos(self) -> None:
        """One warning when annotated segments reach outside their video's [0, duration]:
        training clips them to the features (module docstring)."""
        partly, wholly, first = 0, 0, None
        for video in self.videos:
            if video.duration is None or not len(video.segments):
                continue
            start, end = video.segments[:, 0], video.segments[:, 1]
            outside = (end <= 0) | (start >= video.duration)
            beyond = ((start < 0) | (end > video.duration)) & ~outside
            wholly += int(outside.sum())
            partly += int(beyond.sum())
            if first is None and (outside | beyond).any():
                row = int(np.flatnonzero(outside | beyond)[0])
                first = (f"video {video.video_id!r}: [{start[row]:g}, {end[row]:g}] s, "
                         f"duration {video.duration:g} s")
        if first is not None:
            warnings.warn(
                f"{self.annotations.source}: {partly} segments of subset {self.subsets} reach "
                f"past their video's [0, duration] and {wholly} lie wholly outside it (first: "
                f"{first}); training clips segments to the features and drops those that keep "
                f"less than trunc_thresh={self.trunc_thresh:g} of their length", stacklevel=3)

    @classmethod
    def from_config(cls, dataset: Any, *, training: bool,
                    generator: Optional[torch.Generator] = None) -> "FeatureDataset":
        """The dataset of a config's ``dataset`` section (:class:`pytal.config.DatasetConfig`):
        ``training=True`` reads ``train_subset`` with training crops (``max_seq_len``,
        ``trunc_thresh``, ``crop_ratio``), else ``val_subset``, whole videos.
        ``force_upsampling`` (or ``resize_length``) resizes every video to ``max_seq_len`` (or
        that many) steps."""
        resize = dataset.resize_length
        if resize is None and dataset.force_upsampling:
            resize = dataset.max_seq_len          # ActivityNet-style: every video to max_seq_len
        return cls(dataset.annotation_file, dataset.feature_dir,
                   subset=dataset.train_subset if training else dataset.val_subset,
                   feat_stride=dataset.feat_stride, num_frames=dataset.num_frames,
                   default_fps=dataset.default_fps, file_prefix=dataset.file_prefix or "",
                   file_ext=dataset.file_ext, resize_length=resize, training=training,
                   max_seq_len=dataset.max_seq_len if training else None,
                   trunc_thresh=dataset.trunc_thresh,
                   crop_ratio=dataset.crop_ratio if training else None,
                   input_dim=dataset.input_dim, generator=generator,
                   label_space=dataset.label_space,
                   clip_stride=dataset.clip_stride if training else None,
                   class_agnostic=dataset.class_agnostic)

    @property
    def num_classes(self) -> int:
        """Classes of the file (``class_names``), also when ``class_agnostic``."""
        return len(self.class_names)

    @property
    def num_target_classes(self) -> int:
        """Classes of the items' ``labels``: 1 when ``class_agnostic``, else ``num_classes``."""
        return 1 if self.class_agnostic else self.num_classes

    @property
    def video_ids(self) -> list[str]:
        return [v.video_id for v in self.videos]

    def __len__(self) -> int:
        return len(self.videos) if self.clips is None else len(self.clips)

    def path(self, video_id: str) -> str:
        """The feature file of ``video_id``."""
        return feature_path(self.feature_dir, video_id, prefix=self.file_prefix, ext=self.file_ext)

    def _with_features(self, videos: list[VideoAnnotation], skip_missing: bool) -> list[VideoAnnotation]:
        missing = [v for v in videos if not os.path.isfile(self.path(v.video_id))]
        if missing and not skip_missing:
            raise FileNotFoundError(
                f"feature file not found: {self.path(missing[0].video_id)} ({len(missing)} of "
                f"{len(videos)} videos of subset {self.subsets} have no file "
                f"'{self.file_prefix}<video_id>{self.file_ext}' in {self.feature_dir}; pass "
                "skip_missing=True to drop them)")
        missing_ids = {v.video_id for v in missing}
        kept = [v for v in videos if v.video_id not in missing_ids]
        if not kept:
            raise ValueError(f"subset {self.subsets} is empty: none of its {len(videos)} videos "
                             f"has a feature file in {self.feature_dir}")
        return kept

    def _fps(self, video: VideoAnnotation) -> float:
        fps = video.fps if video.fps is not None else self.default_fps
        if fps is None:
            raise AnnotationError(f"{self.annotations.source}: video {video.video_id!r} has no "
                                  "field 'fps' and default_fps is not set")
        return float(fps)

    def grid(self, index: int) -> FeatureGrid:
        """The feature grid of item ``index`` after resizing (fixed stride: the files' grid)."""
        video = self.videos[index]
        if self.resize_length is not None:
            return FeatureGrid.fixed_length(video.duration, self.resize_length, self._fps(video))
        return FeatureGrid(self._fps(video), self.feat_stride, self.num_frames)

    def _check_length(self, video: VideoAnnotation, length: int, path: str) -> None:
        if self.length_tolerance is None or self.feat_stride is None:
            return
        grid = FeatureGrid(self._fps(video), self.feat_stride, self.num_frames)
        expected = grid.num_features(video.duration)
        if abs(length - expected) > self.length_tolerance * expected + 1:
            raise ValueError(
                f"feature file {path}: {length} features, but duration {video.duration:.3f} s at "
                f"fps={grid.fps:g}, feat_stride={grid.feat_stride:g}, num_frames={grid.num_frames:g} "
                f"implies about {expected} (tolerance {self.length_tolerance:.0%}); check "
                "feat_stride / num_frames / fps, or pass length_tolerance=None")

    def read(self, path: str, steps: Optional[slice] = None) -> torch.Tensor:
        """(C, T) float32 inputs of one video from its file, checked against ``input_dim``
        (subclasses read other layouts); ``steps``: only those steps."""
        feats = load_features(path, channels=self.input_dim)
        return feats if steps is None else feats[:, steps].contiguous()

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = None
        if self.clips is not None:
            index, start = self.clips[index]
        video = self.videos[index]
        path = self.path(video.video_id)
        grid = self.grid(index)
        segments = torch.from_numpy(grid.to_steps(video.segments)).to(torch.float32)
        labels = torch.from_numpy(self._label_ids(video))
        if start is not None:
            window = slice(start, start + self.max_seq_len)
            if self.resize_length is not None:
                feats = resize_features(self.read(path), self.resize_length)[:, window]
            else:
                feats = self.read(path, window)
            clipped, keep = clip_to_window(segments.reshape(-1, 2), start,
                                           start + self.max_seq_len, offset=grid.offset,
                                           trunc_thresh=self.trunc_thresh)
            segments, labels = clipped[keep], labels[keep]
        else:
            feats = self.read(path)
            self._check_length(video, feats.shape[1], path)
            if self.resize_length is not None:
                feats = resize_features(feats, self.resize_length)
            if self.training:
                feats, segments, labels = self._crop(feats, segments, labels, grid.offset)
        return {
            "video_id": video.video_id,
            "feats": feats,
            "segments": segments.reshape(-1, 2),
            "labels": labels,
            "fps": grid.fps,
            "duration": video.duration,
            "feat_stride": grid.feat_stride,
            "feat_num_frames": grid.num_frames,
        }

    def _label_ids(self, video: VideoAnnotation) -> np.ndarray:
        """(N,) int64 label ids of the video's rows (all 0 when ``class_agnostic``)."""
        if self.class_agnostic:
            return np.zeros(len(video.label_names), np.int64)
        if self.label_source == "label_id":
            return video.label_ids if video.label_ids is not None else np.zeros(0, np.int64)
        return np.asarray([self._label_index[n] for n in video.label_names], dtype=np.int64)

    def _crop(self, feats: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor,
              offset: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training crop (when needed), then clip segments to the window and drop the cut-off."""
        feat_len = feats.shape[1]
        window = crop_length(feat_len, max_seq_len=self.max_seq_len, crop_ratio=self.crop_ratio,
                             generator=self.generator)
        if window < feat_len:
            start, segments, keep = random_crop(feat_len, segments, window=window, offset=offset,
                                                trunc_thresh=self.trunc_thresh,
                                                generator=self.generator)
            return feats[:, start:start + window].clone(), segments, labels[keep]
        clipped, keep = clip_to_window(segments, 0, feat_len, offset=offset,
                                       trunc_thresh=self.trunc_thresh)
        return feats, clipped[keep], labels[keep]

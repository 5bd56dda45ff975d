"""Synthetic TAL datasets in the on-disk format that :class:`~pytal.data.FeatureDataset` reads.

    from pytal.data.synthetic import write_dataset
    ds = write_dataset("/tmp/syn", num_videos=40, num_classes=5, feat_dim=64, seed=0)
    ds = write_dataset("/tmp/thumos_syn", feat_dim=512, seed=0,
                       layout="pytal/resources/thumos14.json")   # real action statistics
    train = ds.dataset("validation", training=True, max_seq_len=2304)

Writes ``<root>/annotations.json`` (ActivityNet-style, every annotation with ``label_id`` = index
in the sorted class names, every video with ``fps``) and ``<root>/features/<video_id>.npy``
((T, C) float32, T = full ``num_frames`` windows at ``feat_stride`` in the duration). Output is
a deterministic function of the arguments. The signal is described in
:mod:`pytal.data.synthetic.signal`.
"""
from __future__ import annotations

import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from pytal.io.jsonio import PathOrDict, write_json
from pytal.data.synthetic.layout import VideoSpec, class_names, layout_from_file, random_layout
from pytal.data.synthetic.signal import FeatureSynthesizer, SignalConfig
from pytal.data.timing import FeatureGrid

__all__ = ["SignalConfig", "SyntheticDataset", "write_dataset"]

ANNOTATION_NAME = "annotations.json"
FEATURE_DIR_NAME = "features"
MANIFEST_NAME = "synthetic.json"


@dataclass(frozen=True)
class SyntheticDataset:
    """What :func:`write_dataset` wrote.

    Attributes:
        root: the output folder. annotation_file, feature_dir: paths inside it.
        class_names: ``class_names[i]`` is label id ``i``.
        subsets: subset name -> video ids.
        feat_dim, feat_stride, num_frames: feature channels and grid (frames).
        fps: the frame rate of videos whose layout gave none.
    """

    root: str
    annotation_file: str
    feature_dir: str
    class_names: list[str]
    subsets: dict[str, list[str]]
    feat_dim: int
    feat_stride: int
    num_frames: int
    fps: float
    file_ext: str = ".npy"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def dataset(self, subset: Union[str, Sequence[str]], **kwargs: Any):
        """A :class:`~pytal.data.FeatureDataset` over ``subset`` (kwargs override the grid)."""
        from pytal.data.dataset import FeatureDataset
        kwargs = {"feat_stride": self.feat_stride, "num_frames": self.num_frames,
                  "default_fps": self.fps, "file_ext": self.file_ext,
                  "input_dim": self.feat_dim, **kwargs}
        return FeatureDataset(self.annotation_file, self.feature_dir, subset=subset, **kwargs)

    def config_overrides(self) -> dict[str, Any]:
        """The ``dataset.*`` config keys that point a config at this dataset."""
        return {"dataset.annotation_file": self.annotation_file,
                "dataset.feature_dir": self.feature_dir,
                "dataset.file_ext": self.file_ext,
                "dataset.feat_stride": self.feat_stride,
                "dataset.num_frames": self.num_frames,
                "dataset.default_fps": self.fps,
                "dataset.input_dim": self.feat_dim,
                "dataset.num_classes": self.num_classes}


def write_dataset(root: Union[str, os.PathLike], *, num_videos: Optional[int] = None,
                  num_classes: Optional[int] = None, feat_dim: int = 64, seed: int = 0,
                  layout: Optional[PathOrDict] = None, subsets: Optional[Sequence[str]] = None,
                  max_videos: Optional[int] = None, feat_stride: int = 4, num_frames: int = 16,
                  fps: float = 30.0, duration_range: tuple[float, float] = (30.0, 180.0),
                  actions_per_video: tuple[int, int] = (2, 8),
                  action_seconds: tuple[float, float] = (0.5, 60.0),
                  overlap_prob: float = 0.0, multi_label_prob: float = 0.0,
                  val_fraction: float = 0.25, signal: SignalConfig = SignalConfig(),
                  reuse: bool = False, workers: int = 2) -> SyntheticDataset:
    """Write a synthetic dataset under ``root`` and describe it.

    Random layout (``layout=None``): ``num_videos`` (default 40) videos of ``num_classes``
    (default 5) classes, durations uniform in ``duration_range`` seconds, ``actions_per_video``
    actions each with log-uniform lengths in ``action_seconds`` (very short to very long),
    optional overlaps (``overlap_prob``) and second labels (``multi_label_prob``); the last
    ``val_fraction`` of the videos form subset ``validation``, the rest ``training``.

    Real layout (``layout=`` an annotation JSON path or dict): its videos' subsets, durations,
    frame rates (``fps`` where it has none), segments and label names; ``subsets`` selects
    subsets and ``max_videos`` caps the videos per subset (seeded sample). ``num_videos`` and
    ``num_classes`` do not apply.

    Features: ``feat_dim`` float32 channels on the grid (``feat_stride``, ``num_frames``, fps).
    ``signal`` sets the difficulty. With ``reuse=True``, a folder already written with the same
    arguments is returned as is. ``workers`` threads write the files.
    """
    root = os.fspath(root)
    args = dict(num_videos=num_videos, num_classes=num_classes, feat_dim=feat_dim, seed=seed,
                layout=layout if layout is None or isinstance(layout, dict) else os.path.abspath(os.fspath(layout)),
                subsets=None if subsets is None else list(subsets), max_videos=max_videos,
                feat_stride=feat_stride, num_frames=num_frames, fps=fps,
                duration_range=list(duration_range), actions_per_video=list(actions_per_video),
                action_seconds=list(action_seconds), overlap_prob=overlap_prob,
                multi_label_prob=multi_label_prob, val_fraction=val_fraction, signal=asdict(signal))
    manifest_path = os.path.join(root, MANIFEST_NAME)
    if reuse and os.path.isfile(manifest_path):
        with open(manifest_path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("args") == json.loads(json.dumps(args)):
            return SyntheticDataset(**manifest["dataset"])

    layout_rng = np.random.default_rng([seed, 0])
    if layout is None:
        specs = random_layout(
            40 if num_videos is None else num_videos, 5 if num_classes is None else num_classes,
            rng=layout_rng, fps=fps, duration_range=duration_range,
            actions_per_video=actions_per_video, action_seconds=action_seconds,
            overlap_prob=overlap_prob, multi_label_prob=multi_label_prob,
            val_fraction=val_fraction)
        names = class_names(5 if num_classes is None else num_classes)
    else:
        if num_videos is not None or num_classes is not None:
            raise ValueError("num_videos / num_classes do not apply with layout=...: the layout "
                             "file fixes them (use subsets= and max_videos= to select videos)")
        specs, names = layout_from_file(layout, rng=layout_rng, default_fps=fps,
                                        subsets=subsets, max_videos=max_videos)

    feature_dir = os.path.join(root, FEATURE_DIR_NAME)
    os.makedirs(feature_dir, exist_ok=True)
    synth = FeatureSynthesizer(len(names), feat_dim, noise_window=round(num_frames / feat_stride),
                               config=signal, seed=seed)

    def write_one(spec: VideoSpec) -> None:
        grid = FeatureGrid(spec.fps, feat_stride, num_frames)
        rng = np.random.default_rng([seed, 2, zlib.crc32(spec.video_id.encode())])
        feats = synth.features(spec, grid, grid.num_features(spec.duration), rng)
        np.save(os.path.join(feature_dir, spec.video_id + ".npy"), feats)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(write_one, specs))

    annotation_file = os.path.join(root, ANNOTATION_NAME)
    write_json(annotation_file, _annotation_json(specs, names))
    dataset = SyntheticDataset(
        root=root, annotation_file=annotation_file, feature_dir=feature_dir, class_names=names,
        subsets=_subsets(specs), feat_dim=feat_dim, feat_stride=feat_stride,
        num_frames=num_frames, fps=float(fps))
    write_json(manifest_path, {"args": args, "dataset": asdict(dataset)})
    return dataset


def _subsets(specs: Sequence[VideoSpec]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        out.setdefault(spec.subset, []).append(spec.video_id)
    return out


def _annotation_json(specs: Sequence[VideoSpec], names: Sequence[str]) -> dict[str, Any]:
    database = {}
    for spec in specs:
        database[spec.video_id] = {
            "subset": spec.subset, "duration": spec.duration, "fps": spec.fps,
            "annotations": [{"segment": [float(s), float(e)], "label": names[c], "label_id": int(c)}
                            for (s, e), c in zip(spec.segments.tolist(), spec.labels.tolist())]}
    return {"version": "pytal-synthetic-1", "taxonomy": [], "database": database}

"""Video -> features: decode (:mod:`pytal.video.decode`), cut windows
(:mod:`pytal.video.windows`), encode each window with a backbone (:mod:`pytal.backbones`), and
write one ``<video_id>.npy`` (T, C) float32 per video plus ``manifest.json``."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from pytal.backbones import ClipEncoder, build_backbone
from pytal.io.atomic import save_npy
from pytal.video.decode import FrameTransform, VideoError, iter_frames, probe_video
from pytal.video.manifest import MANIFEST_FORMAT, read_manifest, write_manifest
from pytal.video.windows import iter_windows, num_windows

__all__ = ["ExtractionSettings", "ExtractionReport", "VIDEO_EXTENSIONS", "list_videos",
           "video_id_of", "extract_video", "extract_each", "extract_videos"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".wmv", ".3gp", ".ts")


@dataclass(frozen=True)
class ExtractionSettings:
    """How features are extracted; the ``settings`` of a feature folder's manifest.

    Attributes:
        backbone: registry name (:mod:`pytal.backbones`).
        fps: frames per second the video is resampled to (None: each video's own rate).
        num_frames: frames per window.
        stride: frames between window starts.
        resize, crop: the frame transform (None: the backbone's).
        weights: the weights' identity (``"random-seed0"`` or a SHA-256 prefix); filled in
            from the backbone when extracting.
    """

    backbone: str
    fps: Optional[float]
    num_frames: int
    stride: int
    resize: Optional[tuple[int, ...]] = None
    crop: Optional[tuple[int, int]] = None
    weights: Optional[str] = None

    def __post_init__(self) -> None:
        if self.fps is not None and not (float(self.fps) > 0):
            raise ValueError(f"fps must be > 0 (or unset for the video's own), got {self.fps!r}")
        for name in ("num_frames", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    def for_encoder(self, encoder: ClipEncoder) -> "ExtractionSettings":
        """These settings with the encoder's transform filled in and its weights recorded;
        ValueError when the encoder cannot take them."""
        spec = encoder.spec
        if spec.name != self.backbone:
            raise ValueError(f"settings name backbone {self.backbone!r}, encoder is {spec.name!r}")
        if spec.fixed_frames is not None and self.num_frames != spec.fixed_frames:
            raise ValueError(f"backbone {spec.name} takes windows of exactly {spec.fixed_frames} "
                             f"frames, got num_frames {self.num_frames}")
        crop = self.crop or spec.crop
        if min(crop) < spec.min_crop:
            raise ValueError(f"backbone {spec.name} needs a crop of at least {spec.min_crop} "
                             f"pixels, got {crop}")
        return dataclasses.replace(self, resize=self.resize or spec.resize, crop=crop,
                                   weights=encoder.weights_id)

    @property
    def transform(self) -> FrameTransform:
        if self.resize is None or self.crop is None:
            raise ValueError("settings without resize / crop: call for_encoder first")
        return FrameTransform(self.resize, self.crop)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resize"] = None if self.resize is None else list(self.resize)
        d["crop"] = None if self.crop is None else list(self.crop)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "settings") -> "ExtractionSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown extraction setting {unknown[0]!r} "
                             f"(known: {', '.join(sorted(names))})")
        missing = [n for n in ("backbone", "fps", "num_frames", "stride") if n not in data]
        if missing:
            raise ValueError(f"{source}: missing extraction setting {missing[0]!r}")
        return cls(**data)


@dataclass
class ExtractionReport:
    """Outcome of :func:`extract_videos`: video ids written, skipped (already done) and failed
    (``(path, message)``)."""

    written: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def list_videos(inputs: Iterable[str]) -> list[str]:
    """Video files from paths and folders (a folder gives its files with a video extension,
    sorted). Raises FileNotFoundError naming a path that does not exist or a folder without
    videos, ValueError naming two files with the same video id (:func:`video_id_of`)."""
    out = []
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path)
                           if f.lower().endswith(VIDEO_EXTENSIONS)
                           and os.path.isfile(os.path.join(path, f)))
            if not found:
                raise FileNotFoundError(f"no video file ({', '.join(VIDEO_EXTENSIONS)}) in {path}")
            out += found
        elif os.path.isfile(path):
            out.append(path)
        else:
            raise FileNotFoundError(f"video not found: {path}")
    ids: dict[str, str] = {}
    for path in out:
        vid = video_id_of(path)
        if vid in ids:
            raise ValueError(f"two videos with id {vid!r}: {ids[vid]} and {path}")
        ids[vid] = path
    return out


def video_id_of(path: str) -> str:
    """The file name without its extension."""
    return os.path.splitext(os.path.basename(path))[0]


@torch.no_grad()
def extract_video(path: str, encoder: ClipEncoder, settings: ExtractionSettings, *,
                  batch_size: int = 8, progress: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Features of one video: ``((T, C) float32, info)`` with
    ``T = max(1, floor((frames - num_frames) / stride) + 1)`` over the resampled frames, and
    ``info`` = ``fps``, ``native_fps``, ``duration`` (s), ``frames`` (resampled) for the manifest.

    ``settings`` must have been through :meth:`ExtractionSettings.for_encoder`. Raises
    :class:`~pytal.video.decode.VideoError` naming the file for unusable videos."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = encoder.mean.device
    header = probe_video(path)
    fps = settings.fps if settings.fps is not None else header.native_fps
    expected = num_windows(int(round((header.duration or 0) * fps)), settings.num_frames,
                           settings.stride)
    info: dict[str, Any] = {}
    frames = iter_frames(path, fps=settings.fps, transform=settings.transform, info_out=info)
    chunks, batch = [], []
    bar = tqdm(total=expected, desc=video_id_of(path), unit="win", leave=False,
               disable=not progress)

    def flush():
        clips = torch.from_numpy(np.stack(batch)).to(device)
        chunks.append(encoder(clips).cpu().numpy())
        bar.update(len(batch))
        batch.clear()

    try:
        for window in iter_windows(frames, settings.num_frames, settings.stride):
            batch.append(window)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    finally:
        bar.close()
    feats = np.concatenate(chunks).astype(np.float32, copy=False)
    expected = num_windows(info["frames"], settings.num_frames, settings.stride)
    if feats.shape[0] != expected:      # the window iterator and the formula must agree
        raise AssertionError(f"{path}: {feats.shape[0]} windows, formula says {expected}")
    return feats, info


def extract_each(videos: Sequence[str], encoder: ClipEncoder, settings: ExtractionSettings, *,
                 batch_size: int, progress: bool, log: Callable[[str], None],
                 failed: list[tuple[str, str]], skip: Callable[[str], bool] = lambda _: False
                 ) -> Iterator[tuple[str, Optional[np.ndarray], dict[str, Any]]]:
    """:func:`extract_video` over ``videos`` with an overall progress bar and one plain line per
    video: yields ``(path, (T, C) features, info)``, or ``(path, None, {})`` for a video whose
    id ``skip`` accepts. A video that cannot be decoded is appended to ``failed`` as ``(path,
    message)`` and the others go on."""
    overall = tqdm(total=len(videos), desc="videos", unit="video", disable=not progress)
    try:
        for n, path in enumerate(videos, 1):
            vid, where = video_id_of(path), f"[{n}/{len(videos)}]"
            if skip(vid):
                log(f"{where} {vid}: already extracted, skipped")
                yield path, None, {}
                overall.update(1)
                continue
            start = time.perf_counter()
            try:
                feats, info = extract_video(path, encoder, settings, batch_size=batch_size,
                                            progress=progress)
            except (VideoError, FileNotFoundError) as err:
                failed.append((path, str(err)))
                log(f"{where} {vid}: FAILED: {err}")
                overall.update(1)
                continue
            log(f"{where} {vid}: {feats.shape[0]} x {feats.shape[1]} features, "
                f"{info['frames']} frames at {info['fps']:g} fps, "
                f"{time.perf_counter() - start:.1f} s")
            yield path, feats, info
            overall.update(1)
    finally:
        overall.close()


def _check_folder_settings(manifest: Optional[dict], settings: ExtractionSettings, out_dir: str
                           ) -> dict:
    if manifest is None:
        return {"format": MANIFEST_FORMAT, "settings": settings.to_dict(), "videos": {}}
    old = manifest["settings"]
    new = settings.to_dict()
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise ValueError(f"{os.path.join(out_dir, 'manifest.json')}: the folder holds "
                             f"features with {key}={old.get(key)!r}, this run uses "
                             f"{key}={new.get(key)!r}; use another --out")
    return manifest


def extract_videos(inputs: Sequence[str], out_dir: str, settings: ExtractionSettings, *,
                   weights: Optional[str] = None, device: str = "cpu", batch_size: int = 8,
                   progress: Optional[bool] = None,
                   log: Callable[[str], None] = print) -> ExtractionReport:
    """Extract every video of ``inputs`` (files or folders) into ``out_dir/<video_id>.npy``
    (written atomically) and ``out_dir/manifest.json`` (rewritten after each video).

    Resumable: a video whose ``.npy`` exists and is listed in the manifest is skipped. A folder
    extracted with other settings is refused (ValueError naming the differing setting). A
    video that fails is logged and recorded in the report; the others go on. ``progress``:
    bars per video and overall (default: when stderr is a terminal); ``log`` gets one plain
    line per video either way."""
    videos = list_videos(inputs)
    encoder = build_backbone(settings.backbone, weights, device=device)
    settings = settings.for_encoder(encoder)
    os.makedirs(out_dir, exist_ok=True)
    manifest = _check_folder_settings(read_manifest(out_dir), settings, out_dir)
    if progress is None:
        progress = sys.stderr.isatty()
    report = ExtractionReport()

    def done(vid: str) -> bool:
        return vid in manifest["videos"] and os.path.isfile(os.path.join(out_dir, vid + ".npy"))

    for path, feats, info in extract_each(videos, encoder, settings, batch_size=batch_size,
                                          progress=progress, log=log, skip=done,
                                          failed=report.failed):
        vid = video_id_of(path)
        if feats is None:
            report.skipped.append(vid)
            continue
        save_npy(os.path.join(out_dir, vid + ".npy"), feats)
        manifest["videos"][vid] = {
            "source": os.path.abspath(path), "fps": info["fps"],
            "native_fps": info["native_fps"], "duration": info["duration"],
            "frames": info["frames"], "num_features": int(feats.shape[0]),
            "num_frames": settings.num_frames, "stride": settings.stride,
            "backbone": settings.backbone, "weights": settings.weights}
        write_manifest(out_dir, manifest)
        report.written.append(vid)
    return report

"""``pytal infer --ckpt CKPT VIDEO... --out DIR``: features with the checkpoint's extraction
settings, detections, then ``DIR/detections.json``, ``DIR/<video_id>.timeline.png`` and
``DIR/<video_id>.srt``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from pytal.backbones import RANDOM, build_backbone
from pytal.engine.checkpoint import load_checkpoint
from pytal.video.extract import ExtractionSettings, extract_each, list_videos, video_id_of

__all__ = ["VideoDetections", "checkpoint_extraction", "detect_in_videos"]


@dataclass
class VideoDetections:
    """What :func:`detect_in_videos` wrote: the detections dict, files per video, failures."""

    detections: dict[str, Any]
    files: dict[str, list[str]] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


def checkpoint_extraction(ckpt_path: str) -> Optional[dict[str, Any]]:
    """The extraction settings ``pytal train`` copied into a checkpoint (None when it has
    none: a checkpoint trained on features without a manifest, or a public-code one)."""
    settings = load_checkpoint(ckpt_path).get("extraction")
    return dict(settings) if isinstance(settings, dict) else None


def _detect(model, items: list[dict[str, Any]], class_names: Sequence[str], device: str,
            cfg) -> dict[str, Any]:
    """Detections JSON of feature items (``video_id``, ``feats`` (C, T), ``fps``, ``duration``,
    ``feat_stride``, ``feat_num_frames``) with a model from ``load_model``: the engine batches
    them and calls the model protocol's ``predict`` (segments come back in seconds), then
    applies ``cfg.eval.ext_score_file`` when it is set."""
    from pytal.engine import infer_with_config

    return infer_with_config(model, items, cfg, class_names, device=device)


def detect_in_videos(ckpt: str, videos: Sequence[str], out_dir: str, *,
                     settings: ExtractionSettings, backbone_weights: Optional[str] = None,
                     config: Optional[str] = None, overrides: Sequence[str] = (),
                     device: str = "cpu", clip_batch_size: int = 8, min_score: float = 0.3,
                     progress: bool = False, log: Callable[[str], None] = print
                     ) -> VideoDetections:
    """Extract features of ``videos`` with ``settings`` (the checkpoint's, see
    :func:`checkpoint_extraction`), detect actions with the checkpoint's model and write the
    detections JSON (segments in seconds), one timeline PNG and one SRT file per video.

    ``backbone_weights``: a path, ``"random"``, or None (the torch cache; ``"random"`` when the
    checkpoint's features were extracted with random weights). Weights other than the ones the
    features were extracted with are refused. A video that cannot be decoded is reported in
    ``failed``; the others go on."""
    from pytal.io.jsonio import write_json
    from pytal.engine import load_model
    from pytal.video.subtitles import write_srt
    from pytal.visualize import plot_timelines

    model, cfg, names = load_model(ckpt, config=config, overrides=overrides, device=device)
    if backbone_weights is None and settings.weights == "random-seed0":
        backbone_weights = RANDOM
    encoder = build_backbone(settings.backbone, backbone_weights, device=device)
    if settings.weights is not None and encoder.weights_id != settings.weights:
        raise ValueError(f"{ckpt}: the model was trained on features of {settings.backbone} "
                         f"weights {settings.weights}; the backbone weights given are "
                         f"{encoder.weights_id} (pass the same file with --backbone-weights)")
    settings = settings.for_encoder(encoder)
    input_dim = cfg.dataset.input_dim
    if input_dim is not None and int(input_dim) != encoder.feature_dim:
        raise ValueError(f"{ckpt}: the model takes {input_dim}-d features, backbone "
                         f"{settings.backbone} gives {encoder.feature_dim}-d")
    items, result = [], VideoDetections(detections={})
    videos = list_videos(videos)
    for path, feats, info in extract_each(videos, encoder, settings, batch_size=clip_batch_size,
                                          progress=progress, log=log, failed=result.failed):
        items.append({"video_id": video_id_of(path),
                      "feats": torch.from_numpy(feats).t().contiguous(),
                      "fps": float(info["fps"]), "duration": float(info["duration"]),
                      "feat_stride": float(settings.stride),
                      "feat_num_frames": float(settings.num_frames)})
    if not items:
        return result
    result.detections = _detect(model, items, names, device, cfg)
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "detections.json"), result.detections)
    for item in items:
        vid = item["video_id"]
        entries = result.detections["results"].get(vid, [])
        truth = {"database": {vid: {"duration": item["duration"], "annotations": []}}}
        png = plot_timelines(truth, result.detections, [vid],
                             os.path.join(out_dir, f"{vid}.timeline.png"), min_score=min_score)
        srt = write_srt(os.path.join(out_dir, f"{vid}.srt"), entries, min_score=min_score)
        result.files[vid] = [png, srt]
    return result

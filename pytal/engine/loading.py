"""Models from checkpoint files (pytal's, or foreign ones a detector converts), and inference
items from bare feature files."""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional

import torch
from torch import nn

from pytal.config import Config, Overrides, config_from_dict, load_config
from pytal.engine.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint

__all__ = ["load_model", "class_names_of", "detection_class_names", "feature_items"]


def class_names_of(cfg: Config, ckpt: Optional[dict] = None) -> list[str]:
    """Class names for label ids: the checkpoint's, else the config's annotation file's, else
    ``"0" .. "C-1"``."""
    if ckpt is not None and ckpt.get("class_names"):
        return list(ckpt["class_names"])
    num = cfg.dataset.num_classes
    path = cfg.dataset.annotation_file
    if path and os.path.isfile(path):
        from pytal.data.annotations import load_annotations, resolve_labels
        names, _ = resolve_labels(load_annotations(path, label_space=cfg.dataset.label_space))
        if len(names) >= num:
            return [n or str(i) for i, n in enumerate(names)]
    return [str(i) for i in range(num)]


def detection_class_names(cfg: Config, class_names: list[str]) -> list[str]:
    """Names for a model's label ids in its detections: ``class_names``, except for a
    class-agnostic detector evaluated without external class scores
    (``cfg.evaluates_class_agnostic``), whose one class is no class of the file:
    ``[AGNOSTIC_LABEL]``."""
    from pytal.evaluation.detection import AGNOSTIC_LABEL

    return [AGNOSTIC_LABEL] if cfg.evaluates_class_agnostic else list(class_names)


def load_model(ckpt_path: str, *, config: Optional[str] = None, overrides: Overrides = (),
               weights: str = "ema", device: torch.device | str = "cpu"
               ) -> tuple[nn.Module, Config, list[str]]:
    """``(model in eval mode, resolved config, class names)`` from a checkpoint.

    A pytal checkpoint carries its config (``config`` replaces it, ``overrides`` apply on top);
    a foreign checkpoint (e.g. the public code of the detector's authors) needs ``config`` and
    is converted by the detector's ``convert_state_dict`` hook (``weights="ema"`` first,
    ``"raw"`` for the others)."""
    from pytal.models import build_model

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    if ckpt.get("format") == CHECKPOINT_FORMAT:
        for key in ("config", "model"):
            if not isinstance(ckpt.get(key), dict):
                raise CheckpointError(f"{ckpt_path}: not a complete pytal checkpoint (field "
                                      f"{key!r} missing or not a dict)")
        if config is not None:
            cfg = load_config(config, overrides)
        else:
            cfg = config_from_dict(ckpt["config"], overrides, source=f"checkpoint {ckpt_path}")
        model = build_model(cfg)
        _load_weights(model, ckpt["model"], ckpt_path)
        return model.to(device).eval(), cfg, class_names_of(cfg, ckpt)
    if config is None:
        raise ValueError(f"checkpoint {ckpt_path}: not a pytal checkpoint (format "
                         f"{CHECKPOINT_FORMAT!r}); a foreign checkpoint carries no pytal config: "
                         "pass --config (e.g. cltdr_gmg_thumos --override model.variant=release)")
    cfg = load_config(config, overrides)
    model = build_model(cfg)
    convert = getattr(type(model), "convert_state_dict", None)
    state = convert(ckpt, weights) if convert is not None else None
    if state is None:
        raise ValueError(f"checkpoint {ckpt_path}: neither a pytal checkpoint (format "
                         f"{CHECKPOINT_FORMAT!r}) nor one that model {cfg.model.name!r} converts; "
                         f"keys: {sorted(ckpt)[:8]}")
    _load_weights(model, state, ckpt_path)
    return model.to(device).eval(), cfg, class_names_of(cfg, None)


def _load_weights(model: nn.Module, state: Any, ckpt_path: str) -> None:
    """``model.load_state_dict(state)``; weights that do not fit the model raise
    :class:`CheckpointError` naming the file and the first mismatch."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = " ".join(lines[1:2] or lines[:1])[:300]
        raise CheckpointError(f"{ckpt_path}: its weights do not fit the model of the config "
                              f"({detail})") from None


def feature_items(path: str, cfg: Config) -> Iterator[dict[str, Any]]:
    """Inference items (as :class:`~pytal.data.FeatureDataset` gives, without ground truth)
    for one feature file or every ``dataset.file_ext`` file of a folder. A video's fps and
    duration come from ``dataset.annotation_file`` when it lists the video, else from
    ``dataset.default_fps`` and the feature length."""
    from pytal.data.annotations import load_annotations
    from pytal.data.features import load_features
    from pytal.data.timing import FeatureGrid

    d = cfg.dataset
    ext, prefix = d.file_ext, d.file_prefix or ""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(ext))
        if not files:
            raise FileNotFoundError(f"no '*{ext}' feature file in {path} (dataset.file_ext)")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"features not found: {path}")
    known = {}
    ann = d.annotation_file
    if ann and os.path.isfile(ann):
        known = load_annotations(ann).videos
    for file in files:
        name = os.path.basename(file)
        video_id = name[len(prefix):] if prefix and name.startswith(prefix) else name
        video_id = video_id[:-len(ext)] if video_id.endswith(ext) else os.path.splitext(video_id)[0]
        feats = load_features(file, channels=d.input_dim)
        video = known.get(video_id)
        fps = video.fps if video is not None and video.fps is not None else d.default_fps
        if fps is None:
            raise ValueError(f"{file}: video {video_id!r} is not in dataset.annotation_file and "
                             "dataset.default_fps is not set; pass --override "
                             "dataset.default_fps=<frames per second>")
        grid = FeatureGrid(float(fps), d.feat_stride, d.num_frames)
        duration = video.duration if video is not None else grid.covered_seconds(feats.shape[1])
        yield {"video_id": video_id, "feats": feats, "fps": grid.fps, "duration": float(duration),
               "feat_stride": grid.feat_stride, "feat_num_frames": grid.num_frames}

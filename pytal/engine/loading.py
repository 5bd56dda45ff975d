"""Models from checkpoint files (pytal's, or the CLTDR-GMG public code's), and inference
items from bare feature files."""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from pytal.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint

__all__ = ["load_model", "class_names_of", "feature_items"]


def class_names_of(cfg: dict, ckpt: Optional[dict] = None) -> list[str]:
    """Class names for label ids: the checkpoint's, else the config's annotation file's, else
    ``"0" .. "C-1"``."""
    if ckpt is not None and ckpt.get("class_names"):
        return list(ckpt["class_names"])
    num = int(cfg["dataset"]["num_classes"])
    path = cfg["dataset"].get("annotation_file")
    if path and os.path.isfile(path):
        from pytal.data.annotations import load_annotations, resolve_labels
        names, _ = resolve_labels(load_annotations(path))
        if len(names) >= num:
            return [n or str(i) for i, n in enumerate(names)]
    return [str(i) for i in range(num)]


def load_model(ckpt_path: str, *, config: Optional[str] = None, overrides: Sequence[str] = (),
               weights: str = "ema", device: torch.device | str = "cpu"
               ) -> tuple[nn.Module, dict, list[str]]:
    """``(model in eval mode, resolved config, class names)`` from a checkpoint.

    A pytal checkpoint carries its config (``config`` replaces it, ``overrides`` apply on top);
    a public-code CLTDR-GMG checkpoint (``{"state_dict", "state_dict_ema", ...}``) needs
    ``config`` and is converted with ``convert_release_checkpoint`` (``weights="ema"`` first,
    ``"raw"`` for the others)."""
    from pytal.config import apply_overrides, load_config, validate_config
    from pytal.models import build_model

    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    if ckpt.get("format") == CHECKPOINT_FORMAT:
        if config is not None:
            cfg = load_config(config, overrides)
        else:
            cfg = apply_overrides(ckpt["config"], overrides)
            validate_config(cfg)
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])
    elif "state_dict" in ckpt or "state_dict_ema" in ckpt:
        if config is None:
            raise ValueError(f"checkpoint {ckpt_path}: a public-code checkpoint carries no pytal "
                             "config; pass --config (e.g. cltdr_gmg_thumos --override "
                             "model.variant=release)")
        from pytal.models.cltdr_gmg import convert_release_checkpoint, extract_release_state_dict
        cfg = load_config(config, overrides)
        model = build_model(cfg)
        model.load_state_dict(convert_release_checkpoint(extract_release_state_dict(ckpt, weights)))
        ckpt = None
    else:
        raise ValueError(f"checkpoint {ckpt_path}: neither a pytal checkpoint (format "
                         f"{CHECKPOINT_FORMAT!r}) nor a public-code one (state_dict / "
                         f"state_dict_ema); keys: {sorted(ckpt)[:8]}")
    return model.to(device).eval(), cfg, class_names_of(cfg, ckpt)


def feature_items(path: str, cfg: dict) -> Iterator[dict[str, Any]]:
    """Inference items (as :class:`~pytal.data.FeatureDataset` gives, without ground truth)
    for one feature file or every ``dataset.file_ext`` file of a folder. A video's fps and
    duration come from ``dataset.annotation_file`` when it lists the video, else from
    ``dataset.default_fps`` and the feature length."""
    from pytal.data.annotations import load_annotations
    from pytal.data.features import load_features
    from pytal.data.timing import FeatureGrid

    d = cfg["dataset"]
    ext, prefix = d.get("file_ext", ".npy"), d.get("file_prefix") or ""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(ext))
        if not files:
            raise FileNotFoundError(f"no '*{ext}' feature file in {path} (dataset.file_ext)")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"features not found: {path}")
    known = {}
    ann = d.get("annotation_file")
    if ann and os.path.isfile(ann):
        known = load_annotations(ann).videos
    for file in files:
        name = os.path.basename(file)
        video_id = name[len(prefix):] if prefix and name.startswith(prefix) else name
        video_id = video_id[:-len(ext)] if video_id.endswith(ext) else os.path.splitext(video_id)[0]
        feats = load_features(file)
        video = known.get(video_id)
        fps = video.fps if video is not None and video.fps is not None else d.get("default_fps")
        if fps is None:
            raise ValueError(f"{file}: video {video_id!r} is not in dataset.annotation_file and "
                             "dataset.default_fps is not set; pass --override "
                             "dataset.default_fps=<frames per second>")
        grid = FeatureGrid(float(fps), d["feat_stride"], d["num_frames"])
        duration = video.duration if video is not None else grid.covered_seconds(feats.shape[1])
        yield {"video_id": video_id, "feats": feats, "fps": grid.fps, "duration": float(duration),
               "feat_stride": grid.feat_stride, "feat_num_frames": grid.num_frames}

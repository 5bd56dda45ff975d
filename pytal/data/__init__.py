"""Data: annotation files, feature files, datasets, batching and synthetic data.

Public names::

    FeatureDataset(annotation_file, feature_dir, *, subset, ...)   # pytal.data.dataset
    collate(batch, *, length=None, multiple=1)                      # pytal.data.batching
    Batch (what detectors receive), Batch.from_collated(collated)   # pytal.data.batch
    FeatureGrid, seconds_to_steps, steps_to_seconds                 # pytal.data.timing
    load_annotations, resolve_labels, AnnotationError               # pytal.data.annotations
    load_features, feature_path, resize_features                    # pytal.data.features
    synthetic.write_dataset(root, *, num_videos, num_classes, feat_dim, seed, layout=None, ...)
"""
from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it. Imported on first use, so that the annotation and
# JSON readers (used by pytal.evaluation) do not pull in torch.
_EXPORTS = {
    "AnnotationError": "annotations", "Annotations": "annotations",
    "VideoAnnotation": "annotations", "load_annotations": "annotations",
    "resolve_labels": "annotations",
    "collate": "batching", "Batch": "batch", "METADATA_KEYS": "batch",
    "FeatureDataset": "dataset",
    "feature_path": "features", "load_features": "features", "resize_features": "features",
    "FeatureGrid": "timing", "seconds_to_steps": "timing", "steps_to_seconds": "timing",
}

__all__ = sorted([*_EXPORTS, "synthetic"])


def __getattr__(name: str) -> Any:
    if name == "synthetic":
        value = importlib.import_module("pytal.data.synthetic")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"pytal.data.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module 'pytal.data' has no attribute {name!r}")
    globals()[name] = value
    return value

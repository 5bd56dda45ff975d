"""Data: annotation files, feature files, datasets, batching and synthetic data.

Public names::

    FeatureDataset(annotation_file, feature_dir, *, subset, ...)   # pytal.data.dataset
    collate(batch, *, length=None, multiple=1)                      # pytal.data.collate
    FeatureGrid, seconds_to_steps, steps_to_seconds                 # pytal.data.timing
    load_annotations, resolve_labels, AnnotationError               # pytal.data.annotations
    load_features, feature_path, resize_features                    # pytal.data.features
    synthetic.write_dataset(root, *, num_videos, num_classes, feat_dim, seed, layout=None, ...)
"""
from pytal.data import synthetic
from pytal.data.annotations import (AnnotationError, Annotations, VideoAnnotation,
                                    load_annotations, resolve_labels)
from pytal.data.collate import collate
from pytal.data.dataset import FeatureDataset
from pytal.data.features import feature_path, load_features, resize_features
from pytal.data.timing import FeatureGrid, seconds_to_steps, steps_to_seconds

__all__ = [
    "AnnotationError", "Annotations", "FeatureDataset", "FeatureGrid", "VideoAnnotation",
    "collate", "feature_path", "load_annotations", "load_features", "resize_features",
    "resolve_labels", "seconds_to_steps", "steps_to_seconds", "synthetic",
]

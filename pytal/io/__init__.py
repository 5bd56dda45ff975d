"""File input and output without torch: atomic writes, JSON, annotation and detection files.

Everything above it (data, evaluation, the engine, the CLI) reads and writes through this
layer; it imports nothing of pytal but itself and the compiled, torch-free ``pytal._tables``.

Public names::

    atomic_write(path, write, *, binary=False)                       # pytal.io.atomic
    read_json(source, *, what) -> (data, description)                # pytal.io.jsonio
    write_json(path, data, *, indent=None)
    load_annotations(source, *, require_duration, subsets)           # pytal.io.annotations
    load_instances(source, subset) -> InstanceTable
    AnnotationError, Annotations, VideoAnnotation
    load_detections(source, label_index, video_index) -> DetectionTable   # pytal.io.detections
    json_tables.use_compiled(enabled), json_tables.built()           # pytal.io.json_tables
"""
from pytal.io import json_tables
from pytal.io.annotations import (AnnotationError, Annotations, InstanceTable, VideoAnnotation,
                                  load_annotations, load_instances)
from pytal.io.atomic import atomic_write
from pytal.io.detections import DetectionTable, load_detections
from pytal.io.jsonio import PathOrDict, read_json, write_json

__all__ = ["AnnotationError", "Annotations", "DetectionTable", "InstanceTable", "PathOrDict",
           "VideoAnnotation", "atomic_write", "json_tables", "load_annotations",
           "load_detections", "load_instances", "read_json", "write_json"]

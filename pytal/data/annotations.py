"""Label ids of an annotation file (:func:`resolve_labels`).

Reading and validating the file is :mod:`pytal.io.annotations` (torch-free, shared with
evaluation); its public names are re-exported here.

Label ids (:func:`resolve_labels`), in this order:

1. ``"label_id"`` of each annotation, when *every* annotation of the file has one (the files of
   ActionFormer, TriDet and the CLTDR-GMG release do; their checkpoints' class channels follow
   them). A class list given by the caller must then agree with them.
2. Otherwise the index in a class list given by the caller (``classes=``).
3. Otherwise the index in the sorted label names of the whole file (all subsets), so every subset
   of a file shares one numbering.
"""
from __future__ import annotations

from typing import Optional, Sequence

from pytal.io.annotations import (AnnotationError, Annotations, VideoAnnotation,
                                  load_annotations)
from pytal.io.jsonio import PathOrDict

__all__ = ["AnnotationError", "Annotations", "PathOrDict", "VideoAnnotation", "load_annotations",
           "resolve_labels"]


def resolve_labels(annotations: Annotations,
                   classes: Optional[Sequence[str]] = None) -> tuple[list[str], str]:
    """``(class_names, source)``: ``class_names[i]`` is the name of label id ``i``.

    ``source`` says which rule of the module docstring chose the ids: ``"label_id"``,
    ``"classes"`` or ``"sorted_names"``. With file-given ids, ids that no annotation uses get
    the caller's name when ``classes`` is given, else ``""``.
    """
    videos = [v for v in annotations.videos.values() if v.label_names]
    if videos and all(v.label_ids is not None for v in videos):
        by_id: dict[int, str] = {}
        for v in videos:
            for name, i in zip(v.label_names, v.label_ids.tolist()):
                if by_id.setdefault(i, name) != name:
                    raise AnnotationError(
                        f"{annotations.source}: label_id {i} is used for both "
                        f"{by_id[i]!r} and {name!r} (video {v.video_id!r})")
        size = max(by_id) + 1 if classes is None else max(max(by_id) + 1, len(classes))
        names = [by_id.get(i, "") for i in range(size)]
        if classes is not None:
            clash = {i: (classes[i] if i < len(classes) else None, n)
                     for i, n in by_id.items() if i >= len(classes) or classes[i] != n}
            if clash:
                raise AnnotationError(
                    f"{annotations.source}: the given classes disagree with the file's label_id "
                    f"(id: (classes[id], file label)): {dict(sorted(clash.items()))}")
            names = [n or c for n, c in zip(names, list(classes) + [""] * size)]
        return names, "label_id"
    if classes is not None:
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {list(classes)}")
        unknown = sorted(set(annotations.label_names) - set(classes))
        if unknown:
            raise AnnotationError(f"{annotations.source}: labels not in the given classes: {unknown}")
        return list(classes), "classes"
    return annotations.label_names, "sorted_names"

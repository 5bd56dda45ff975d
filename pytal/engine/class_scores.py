"""External video-level class scores (``eval.ext_score_file``) combined with the detections of a
class-agnostic detector, the ActivityNet practice of BMN- and ActionFormer-style detectors.

For every video the ``eval.ext_score_topk`` classes with the highest external score each take a
copy of the video's detections (the ``eval.max_seg_num`` best by score): label = that class,
score = ``sqrt(detection score * class score)``, segment unchanged. The detector's own labels
are dropped. The file's layout is in docs/data.md ("External class scores JSON").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from pytal.config import EvalConfig
from pytal.io.jsonio import PathOrDict, read_json

__all__ = ["VideoClassScores"]

WHAT = "external class scores (eval.ext_score_file)"


@dataclass(frozen=True)
class VideoClassScores:
    """The top-``topk`` classes of each video: ``video_id -> [(class name, score >= 0)]``,
    highest score first (ties: the earlier class of the file first)."""

    top: Mapping[str, list[tuple[str, float]]]
    max_seg_num: int
    source: str

    @classmethod
    def from_config(cls, protocol: EvalConfig, class_names: Sequence[str]
                    ) -> Optional["VideoClassScores"]:
        """The scores of ``protocol.ext_score_file`` (None when it is not set); ``class_names``
        are the dataset's (``class_names[i]`` names class id ``i``)."""
        if not protocol.ext_score_file:
            return None
        return cls.read(protocol.ext_score_file, class_names, topk=protocol.ext_score_topk,
                        max_seg_num=protocol.max_seg_num)

    @classmethod
    def read(cls, source: PathOrDict, class_names: Sequence[str], *, topk: int,
             max_seg_num: int) -> "VideoClassScores":
        """Read and check a scores file (or its loaded dict); errors name the file and field."""
        data, where = read_json(source, what=WHAT)
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
        results = data.get("results", data)
        if not isinstance(results, dict) or not results:
            raise ValueError(f"{where}: 'results' must be a non-empty object "
                             "{video_id: [score per class]}")
        names = data.get("class") if "results" in data else None
        if names is None:
            names = [n or str(i) for i, n in enumerate(class_names)]
        elif (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
              or len(set(names)) != len(names)):
            raise ValueError(f"{where}: 'class' must be a list of distinct class names")
        else:
            unknown = sorted(set(names) - set(class_names))
            if unknown:
                raise ValueError(f"{where}: 'class' names {unknown[:5]} are not classes of the "
                                 f"dataset ({len(class_names)} classes)")
        top = {str(video): _top_classes(scores, names, topk, f"{where}: results[{video!r}]")
               for video, scores in results.items()}
        return cls(top=top, max_seg_num=max_seg_num, source=where)

    def apply(self, detections: Mapping[str, Any]) -> dict[str, Any]:
        """A detections JSON dict (:func:`pytal.engine.detections_json`) with every video's
        detections replaced by their combination with the video's top classes (module
        docstring), sorted by score. A video without scores in the file is an error."""
        results = {}
        for video, entries in detections["results"].items():
            classes = self.top.get(video)
            if classes is None:
                raise ValueError(f"{self.source}: no class scores for video {video!r} (set "
                                 "eval.ext_score_file to a file that covers every video, or "
                                 "null)")
            kept = sorted(entries, key=lambda d: -d["score"])[:self.max_seg_num]
            combined = [{"label": name, "score": math.sqrt(max(d["score"], 0.0) * score),
                         "segment": list(d["segment"])}
                        for name, score in classes for d in kept]
            results[video] = sorted(combined, key=lambda d: -d["score"])
        return {**detections, "results": results}


def _top_classes(scores: Any, names: Sequence[str], topk: int, where: str
                 ) -> list[tuple[str, float]]:
    if (not isinstance(scores, list) or len(scores) != len(names)
            or not all(type(s) in (int, float) and math.isfinite(s) and s >= 0 for s in scores)):
        raise ValueError(f"{where}: expected a list of {len(names)} finite numbers >= 0 (one "
                         "per class)")
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:topk]
    return [(names[i], float(scores[i])) for i in order]

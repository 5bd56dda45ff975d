"""Timeline plots of detections against ground truth (matplotlib, Agg backend)."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence, Union

from pytal.io.atomic import atomic_write

__all__ = ["plot_timelines"]


def plot_timelines(ground_truth: Mapping[str, Any], detections: Mapping[str, Any],
                   video_ids: Sequence[str], path: Union[str, os.PathLike], *,
                   min_score: float = 0.3, max_detections: int = 30) -> str:
    """Write a PNG with one panel per video: ground-truth segments (top row) and the
    detections scoring at least ``min_score`` (at most ``max_detections``, bottom row,
    opacity = score), coloured by class, time in seconds.

    ``ground_truth``: an ActivityNet-style annotation dict (``{"database": {video_id:
    {"duration", "annotations": [{"segment", "label"}]}}}``); ``detections``: a detections
    JSON dict (``{"results": {video_id: [{"label", "score", "segment"}]}}``). Returns the path.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    database = ground_truth["database"]
    results = detections["results"]
    labels = sorted({a["label"] for v in video_ids for a in database[v]["annotations"]}
                    | {d["label"] for v in video_ids for d in results.get(v, [])})
    cmap = plt.get_cmap("tab20")
    colour = {label: cmap(i % 20) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(len(video_ids), 1, figsize=(12, 1.4 * len(video_ids) + 0.6),
                             squeeze=False)
    for ax, vid in zip(axes[:, 0], video_ids):
        video = database[vid]
        for ann in video["annotations"]:
            s, e = ann["segment"]
            ax.broken_barh([(s, e - s)], (1.05, 0.9), color=colour[ann["label"]])
        dets = [d for d in results.get(vid, []) if d["score"] >= min_score][:max_detections]
        for d in dets:
            s, e = d["segment"]
            ax.broken_barh([(s, e - s)], (0.05, 0.9), color=colour[d["label"]],
                           alpha=max(0.15, min(1.0, d["score"])))
        ax.set_xlim(0, video["duration"])
        ax.set_ylim(0, 2)
        ax.set_yticks([0.5, 1.5])
        ax.set_yticklabels([f"detections (score >= {min_score:g})", "ground truth"], fontsize=7)
        ax.set_title(vid, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[label]) for label in labels]
    # The legend gets its own strip on the right (wider for two columns), clear of the axes.
    ncol = 1 if len(labels) <= 12 else 2
    right = 0.86 if ncol == 1 else 0.78
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(right + 0.005, 0.99),
               fontsize=6, ncol=ncol, frameon=False)
    path = os.fspath(path)
    try:
        atomic_write(path, lambda f: fig.savefig(f, dpi=100, format="png"), binary=True)
    finally:
        plt.close(fig)
    return path

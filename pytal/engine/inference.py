"""Inference over a dataset into an ActivityNet detections dict (segments in seconds)."""
from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pytal.data.batch import Batch
from pytal.data.batching import collate
from pytal.engine.amp import autocast_context
from pytal.engine.class_scores import VideoClassScores
from pytal.engine.loading import detection_class_names
from pytal.engine.progress import progress_bar

__all__ = ["DETECTIONS_VERSION", "detections_json", "infer_dataset", "infer_batches",
           "infer_with_config"]

DETECTIONS_VERSION = "pytal-1"


def detections_json(detections: Iterable[Mapping[str, Any]],
                    class_names: Sequence[str]) -> dict[str, Any]:
    """ActivityNet submission ``{"version", "results": {video_id: [{"label", "score",
    "segment": [start, end]}]}, "external_data": {}}`` from ``model.predict`` outputs (dicts with
    ``video_id``, ``segments`` (M, 2) seconds, ``scores`` (M,), ``labels`` (M,) class ids);
    ``class_names[i]`` names class id ``i``. Every video appears, possibly with no entry.
    Detections that also carry class-agnostic ``proposals`` (K, 2) seconds and
    ``proposal_scores`` (K,) (SeqAttNet's proposal stage) add ``"proposals": {video_id:
    [{"score", "segment"}]}``, read by :func:`pytal.evaluation.evaluate_proposals`."""
    results: dict[str, list[dict[str, Any]]] = {}
    proposals: dict[str, list[dict[str, Any]]] = {}
    for det in detections:
        if "proposals" in det:
            proposals[str(det["video_id"])] = [
                {"score": float(score), "segment": [float(s), float(e)]}
                for (s, e), score in zip(det["proposals"].detach().cpu().tolist(),
                                         det["proposal_scores"].detach().cpu().tolist())]
        segs = det["segments"].detach().cpu().tolist()
        scores = det["scores"].detach().cpu().tolist()
        labels = det["labels"].detach().cpu().tolist()
        entries = []
        for (s, e), score, label in zip(segs, scores, labels):
            if not 0 <= label < len(class_names):
                raise ValueError(f"detections_json: class id {label} of video "
                                 f"{det['video_id']!r} is outside class_names "
                                 f"({len(class_names)} names)")
            entries.append({"label": class_names[label] or str(label), "score": float(score),
                            "segment": [float(s), float(e)]})
        results[str(det["video_id"])] = entries
    out = {"version": DETECTIONS_VERSION, "results": results, "external_data": {}}
    return {**out, "proposals": proposals} if proposals else out


@torch.no_grad()
def infer_batches(model: nn.Module, batches: Iterable[Mapping[str, Any]], *,
                  device: torch.device | str = "cpu", progress: bool = False,
                  total: Optional[int] = None, amp: str = "none") -> list[dict[str, Any]]:
    """``model.predict`` over collated batches (``feats`` (B, C, T), ``masks`` (B, 1, T) and the
    metadata lists, as :func:`pytal.data.batching.collate` gives, or :class:`pytal.data.Batch`);
    returns one detection dict per video, on the CPU. The model is put in eval mode and
    restored afterwards. ``amp`` (an ``eval.amp`` value): ``predict`` runs under that autocast
    (``fp16`` on a CPU fails here, before any batch)."""
    autocast = functools.partial(autocast_context, amp, device, "eval.amp")
    autocast()                                  # checks the mode and the device first
    was_training = model.training
    model.eval()
    out: list[dict[str, Any]] = []
    try:
        for batch in progress_bar(batches, progress=progress, total=total, desc="infer"):
            if not isinstance(batch, Batch):
                batch = Batch.from_collated(batch)
            batch = Batch(batch.feats.to(device), batch.masks.to(device),
                          metadata=batch.metadata)            # inference needs no ground truth
            with autocast():
                predicted = model.predict(batch)
            for det in predicted:
                out.append({k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                            for k, v in det.items()})
    finally:
        model.train(was_training)
    return out


def infer_dataset(model: nn.Module, dataset: Dataset, class_names: Sequence[str], *,
                  batch_size: int = 1, num_workers: int = 0, device: torch.device | str = "cpu",
                  progress: bool = False, class_scores: Optional[VideoClassScores] = None,
                  amp: str = "none") -> dict[str, Any]:
    """Detect actions in every item of ``dataset`` (a :class:`~pytal.data.FeatureDataset` in
    evaluation mode, or anything yielding its item dicts) and return the detections JSON dict
    (:func:`detections_json`, segments in seconds), combined with external video-level
    ``class_scores`` when given (``VideoClassScores.from_config(cfg.eval, class_names)``).
    ``amp``: :func:`infer_batches`'s."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=functools.partial(collate))
    dets = infer_batches(model, loader, device=device, progress=progress, total=len(loader),
                         amp=amp)
    detections = detections_json(dets, class_names)
    return detections if class_scores is None else class_scores.apply(detections)


def infer_with_config(model: nn.Module, dataset: Dataset, cfg: Any, class_names: Sequence[str], *,
                      class_scores: Optional[VideoClassScores] = None, **options: Any
                      ) -> dict[str, Any]:
    """:func:`infer_dataset` as ``cfg`` (a :class:`~pytal.config.Config`) says: label ids named
    by :func:`~pytal.engine.loading.detection_class_names`, combined with
    ``eval.ext_score_file``'s class scores (``class_scores`` when the caller has read them
    already, else read here), the forward in ``eval.amp`` precision. ``options``:
    :func:`infer_dataset`'s other keyword arguments."""
    if class_scores is None:
        class_scores = VideoClassScores.from_config(cfg.eval, class_names)
    return infer_dataset(model, dataset, detection_class_names(cfg, class_names),
                         class_scores=class_scores, amp=cfg.eval.amp, **options)

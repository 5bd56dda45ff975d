"""Inference steps shared by point-based detectors: candidate selection per level, segments
from distances, the call into ``pytal.postprocess.batched_nms`` with the config's ``eval.*``
settings, and the conversion from feature steps to seconds.

The usual flow: per level, ``select_candidates`` on the scores -> the detector's own decoding
of those candidates into distances -> ``segments_from_offsets`` -> ``drop_short`` ->
concatenate the levels -> ``detections_in_seconds`` (one ``batched_nms`` for the whole batch,
then ``feature_steps_to_seconds`` per video).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from pytal.data.batch import METADATA_KEYS
from pytal.postprocess import batched_nms

__all__ = ["check_metadata", "detections_in_seconds", "drop_short", "feature_steps_to_seconds",
           "select_candidates", "segments_from_offsets"]


def select_candidates(scores: torch.Tensor, valid: torch.Tensor, *, threshold: float, topk: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep, independently for each video, the (step, class) entries of one level whose score
    exceeds ``threshold`` (strictly), at most ``topk`` of them, highest first.

    Args:
        scores: (B, T, C) class probabilities of one pyramid level.
        valid: (B, T) bool; padded steps are never selected.
        threshold: ``eval.pre_nms_thresh``.  topk: ``eval.pre_nms_topk`` (per video and level).

    Returns ``(b, t, c, score)``, each (K,): video, step, class and score of every kept entry,
    grouped by video (ascending) and by descending score within a video. Equal scores (common
    where a sigmoid saturates to exactly 1.0 in float32) are kept and ordered by lower step,
    then lower class, on every device: Soft-NMS selects the first of equal scores, so this
    order decides which of two overlapping tied candidates survives undecayed.
    """
    if scores.dim() != 3:
        raise ValueError(f"scores: expected shape (B, T, C), got {tuple(scores.shape)}")
    if valid.shape != scores.shape[:2]:
        raise ValueError(f"valid: expected shape {tuple(scores.shape[:2])}, got {tuple(valid.shape)}")
    if topk < 1:
        raise ValueError(f"topk: expected >= 1, got {topk}")
    batch, steps, classes = scores.shape
    flat = (scores * valid[..., None].to(scores.dtype)).reshape(batch, steps * classes)
    k = min(topk, flat.shape[1])
    if k == 0:
        empty = torch.zeros(0, dtype=torch.long, device=scores.device)
        return empty, empty, empty, scores.new_zeros(0)
    top, idx = _topk_ties_by_index(flat, k)
    keep = top > threshold
    b = torch.arange(batch, device=scores.device)[:, None].expand(batch, k)[keep]
    idx = idx[keep]
    return b, idx // classes, idx % classes, top[keep]


def _topk_ties_by_index(flat: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of (B, N) ``flat``: the ``k`` largest values and their indices, sorted by
    descending value and, among equal values, by ascending index (``topk`` leaves both the
    order of equal values and which of them fill the last places unspecified). -> ((B, k), (B, k))."""
    top, idx = flat.topk(min(k + 1, flat.shape[1]), dim=1, sorted=True)
    if top.shape[1] > k:
        cut_in_tie = (top[:, k - 1] == top[:, k]).nonzero().flatten().tolist()
        top, idx = top[:, :k].clone(), idx[:, :k].clone()
        for row in cut_in_tie:  # the k-th value continues past the cut: its lowest indices fill
            kth = top[row, k - 1]
            above = idx[row][top[row] > kth]
            tied = (flat[row] == kth).nonzero().flatten()[:k - above.numel()]
            idx[row] = torch.cat((above, tied))
            top[row] = flat[row, idx[row]]
    idx, by_index = idx.sort(dim=1)
    top = top.gather(1, by_index)
    order = top.argsort(dim=1, descending=True, stable=True)
    return top.gather(1, order), idx.gather(1, order)


def segments_from_offsets(positions: torch.Tensor, offsets: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Segments ``[t - left * s, t + right * s]`` in input feature steps from (K,) point positions
    ``t``, (K, 2) distances in strides and (K,) (or scalar) strides ``s``. -> (K, 2)."""
    if offsets.shape != positions.shape + (2,):
        raise ValueError(f"offsets: expected shape {tuple(positions.shape) + (2,)}, got {tuple(offsets.shape)}")
    return torch.stack((positions - offsets[..., 0] * strides, positions + offsets[..., 1] * strides), dim=-1)


def drop_short(segments: torch.Tensor, min_length: float) -> torch.Tensor:
    """Bool (K,) mask of the segments longer than ``min_length`` (``eval.duration_thresh``, in
    input feature steps)."""
    return (segments[..., 1] - segments[..., 0]) > min_length


def feature_steps_to_seconds(segments: torch.Tensor, *, fps: float, feat_stride: float,
                             num_frames: float, duration: float) -> torch.Tensor:
    """Input feature steps -> seconds: feature ``i`` is centred at
    ``(i * feat_stride + num_frames / 2) / fps``; the result is clipped to ``[0, duration]``."""
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    seconds = (segments * feat_stride + 0.5 * num_frames) / fps
    return seconds.clamp(min=0.0, max=float(duration))


def check_metadata(metadata: Sequence[Mapping[str, Any]], batch: int, who: str) -> None:
    """One metadata dict per video with the keys of :data:`pytal.data.batch.METADATA_KEYS` and
    ``fps > 0``; errors start with ``who``."""
    if len(metadata) != batch:
        raise ValueError(f"{who}: metadata must hold one dict per video (B = {batch}), "
                         f"got {len(metadata)}")
    for i, meta in enumerate(metadata):
        missing = [key for key in METADATA_KEYS if key not in meta]
        if missing:
            raise KeyError(f"{who}: metadata[{i}] lacks {missing} (needs {list(METADATA_KEYS)})")
        if not float(meta["fps"]) > 0:
            raise ValueError(f"{who}: metadata[{i}]['fps'] must be > 0, got {meta['fps']}")


_REDUCED = (torch.float16, torch.bfloat16)


def detections_in_seconds(segments: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                          videos: torch.Tensor, metadata: Sequence[Mapping[str, Any]],
                          protocol: Any) -> list[dict[str, Any]]:
    """NMS over a whole batch, then seconds per video.

    Args:
        segments: (K, 2) candidates in input feature steps; scores (K,); labels (K,) class ids;
            videos (K,) index of each candidate's video in ``metadata``.
        metadata: B dicts (:data:`~pytal.data.batch.METADATA_KEYS`).
        protocol: the config's ``eval`` section (:class:`pytal.config.EvalConfig`): ``nms``
            (method, None: no NMS), ``iou_threshold``, ``nms_sigma``, ``min_score``,
            ``multiclass_nms``, ``voting_thresh`` (class-agnostic NMS only, as in the public
            code of ActionFormer and TriDet) and ``max_seg_num``.

    Returns B dicts ``{"video_id", "segments" (M, 2) seconds clipped to [0, duration],
    "scores" (M,), "labels" (M,)}``, each sorted by score; float16 / bfloat16 candidates (a
    forward under autocast) come out float32.
    """
    if segments.dtype in _REDUCED or scores.dtype in _REDUCED:
        segments, scores = segments.float(), scores.float()
    if protocol.nms is not None:
        segments, scores, labels, videos = batched_nms(
            segments, scores, labels, videos, iou_threshold=protocol.iou_threshold,
            sigma=protocol.nms_sigma, min_score=protocol.min_score, method=protocol.nms,
            multiclass=protocol.multiclass_nms,
            voting_thresh=0.0 if protocol.multiclass_nms else protocol.voting_thresh,
            max_seg_num=protocol.max_seg_num)
    results = []
    for v, meta in enumerate(metadata):
        sel = videos == v
        seconds = feature_steps_to_seconds(
            segments[sel], fps=float(meta["fps"]), feat_stride=float(meta["feat_stride"]),
            num_frames=float(meta["feat_num_frames"]), duration=float(meta["duration"]))
        results.append({"video_id": meta["video_id"], "segments": seconds,
                        "scores": scores[sel], "labels": labels[sel]})
    return results

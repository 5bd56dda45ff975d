"""The batch every detector receives: padded features, masks, ground truth and metadata."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

__all__ = ["METADATA_KEYS", "Batch"]

#: Per-video metadata that turns feature steps into seconds (see :class:`Batch`).
METADATA_KEYS = ("video_id", "fps", "duration", "feat_stride", "feat_num_frames")


@dataclass
class Batch:
    """B videos, padded to T feature steps.

    feats: (B, C, T) float; masks: (B, 1, T) bool, True on real steps. segments: B tensors
    (N_i, 2) ``[start, end]`` in feature steps of ``feats``; labels: B tensors (N_i,) int64
    class ids (or (N_i, C) 0/1 rows); both None at inference. metadata: B dicts with
    ``video_id``, ``fps``, ``duration`` (seconds), ``feat_stride`` and ``feat_num_frames``
    (frames): feature ``i`` is centred at ``(i * feat_stride + feat_num_frames / 2) / fps``
    seconds.
    """

    feats: torch.Tensor
    masks: torch.Tensor
    segments: Optional[list[torch.Tensor]] = None
    labels: Optional[list[torch.Tensor]] = None
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_collated(cls, batch: Mapping[str, Any]) -> "Batch":
        """From :func:`pytal.data.batching.collate`'s dict (metadata keys that are present)."""
        size = batch["feats"].shape[0]
        keys = [k for k in METADATA_KEYS if k in batch]
        return cls(feats=batch["feats"], masks=batch["masks"], segments=batch.get("segments"),
                   labels=batch.get("labels"),
                   metadata=[{k: batch[k][i] for k in keys} for i in range(size)])

    def to(self, device: torch.device | str) -> "Batch":
        """The tensors on ``device`` (metadata unchanged)."""
        move = (lambda xs: None if xs is None else [x.to(device) for x in xs])
        return Batch(self.feats.to(device), self.masks.to(device), move(self.segments),
                     move(self.labels), self.metadata)

    def __len__(self) -> int:
        return self.feats.shape[0]

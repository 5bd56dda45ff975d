"""Batching FeatureDataset items: pad features to one length and keep the rest as lists."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

PADDED_KEYS = ("feats",)


def padded_length(lengths: Sequence[int], *, length: Optional[int] = None, multiple: int = 1) -> int:
    """The batch length: ``length`` if given, else the longest rounded up to ``multiple``."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple!r}")
    longest = max(lengths)
    if length is None:
        return int(math.ceil(longest / multiple) * multiple)
    if longest > length:
        raise ValueError(f"a sequence of {longest} steps does not fit the fixed length {length}; "
                         "crop it first (FeatureDataset(training=True, max_seq_len=...))")
    return int(length)


def collate(batch: Sequence[dict[str, Any]], *, length: Optional[int] = None,
            multiple: int = 1, pad_value: float = 0.0) -> dict[str, Any]:
    """Stack items of :class:`~pytal.data.FeatureDataset` into a batch.

    Features are padded at the end with ``pad_value`` to the longest item (rounded up to a
    ``multiple`` of the model's largest stride) or to a fixed ``length``. For a DataLoader:
    ``collate_fn=functools.partial(collate, multiple=32)``.

    Returns a dict: ``feats`` (B, C, T) float32; ``masks`` (B, 1, T) bool, True on real steps;
    and, for every other key of the items (``segments`` (N_i, 2), ``labels`` (N_i,),
    ``video_id``, ``fps``, ...), the list of the items' values.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    feats = [item["feats"] for item in batch]
    channels = {f.shape[0] for f in feats}
    if len(channels) != 1:
        ids = [item.get("video_id") for item in batch]
        raise ValueError(f"items have different feature channels {sorted(channels)} (videos {ids})")
    lengths = [f.shape[1] for f in feats]
    total = padded_length(lengths, length=length, multiple=multiple)
    out = feats[0].new_full((len(batch), feats[0].shape[0], total), pad_value)
    masks = torch.zeros(len(batch), 1, total, dtype=torch.bool)
    for i, (f, n) in enumerate(zip(feats, lengths)):
        out[i, :, :n] = f
        masks[i, 0, :n] = True
    result: dict[str, Any] = {"feats": out, "masks": masks}
    for key in batch[0]:
        if key not in PADDED_KEYS:
            result[key] = [item[key] for item in batch]
    return result

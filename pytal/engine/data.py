"""Datasets and loaders from a config's ``dataset.*`` keys."""
from __future__ import annotations

import functools
from typing import Optional

import torch
from torch.utils.data import DataLoader, Sampler

from pytal.data.batching import collate
from pytal.config import Config
from pytal.data.dataset import FeatureDataset
from pytal.data.frames import FrameClipDataset

__all__ = ["build_dataset", "check_class_count", "train_loader"]


def build_dataset(cfg: Config, split: str, *,
                  generator: Optional[torch.Generator] = None) -> FeatureDataset:
    """``split="train"``: ``dataset.train_subset`` with training crops (``max_seq_len``,
    ``trunc_thresh``, ``crop_ratio``; ``generator`` draws them); ``split="val"``:
    ``dataset.val_subset``, whole videos. ``dataset.force_upsampling`` (or ``resize_length``)
    resizes every video to ``max_seq_len`` (or that many) steps. ``dataset.frame_dir`` set:
    frame videos (:class:`~pytal.data.frames.FrameClipDataset`)."""
    if split not in ("train", "val"):
        raise ValueError(f"build_dataset: split must be 'train' or 'val', got {split!r}")
    if cfg.dataset.frame_dir:
        dataset = FrameClipDataset.from_config(cfg.dataset, training=split == "train",
                                               generator=generator)
    else:
        dataset = FeatureDataset.from_config(cfg.dataset, training=split == "train",
                                             generator=generator)
    check_class_count(cfg, dataset)
    return dataset


def check_class_count(cfg: Config, dataset: FeatureDataset) -> None:
    """Fail early when the file's classes do not match ``dataset.num_classes`` (the detector's
    outputs), unless ``dataset.class_agnostic`` maps them all to one class."""
    if cfg.dataset.class_agnostic or dataset.num_classes == cfg.dataset.num_classes:
        return
    raise ValueError(f"{dataset.annotations.source}: {dataset.num_classes} classes, but "
                     f"dataset.num_classes is {cfg.dataset.num_classes}; set "
                     f"dataset.num_classes: {dataset.num_classes}, or dataset.class_agnostic: "
                     "true with num_classes: 1 for a class-agnostic detector")


def train_loader(dataset: FeatureDataset, *, batch_size: int, num_workers: int,
                 generator: torch.Generator, sampler: Optional[Sampler] = None) -> DataLoader:
    """Shuffled batches (order drawn from ``generator``, or from ``sampler``, e.g. a
    ``DistributedSampler`` giving this rank's share), last incomplete batch dropped (kept when
    the dataset, or the sampler's share, is smaller than one batch)."""
    size = len(dataset) if sampler is None else len(sampler)
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                      drop_last=size >= batch_size, num_workers=num_workers, generator=generator,
                      collate_fn=functools.partial(collate), persistent_workers=False)

"""The checks every detector runs on its inputs: features and masks before the first layer,
the ground truth before the losses."""
from __future__ import annotations

import torch

__all__ = ["check_feats_and_masks", "check_targets"]


def check_feats_and_masks(owner: str, feats: torch.Tensor, masks: torch.Tensor,
                          input_dim: int) -> None:
    """Raise ``ValueError`` (prefixed ``owner``) unless ``feats`` is a floating (B, input_dim, T)
    tensor and ``masks`` a (B, 1, T) bool tensor on the same device."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 3 or feats.shape[1] != input_dim:
        got = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{owner}: feats must be a (B, {input_dim}, T) float tensor "
                         f"(dataset.input_dim = {input_dim}), got {got}")
    if not feats.is_floating_point():
        raise ValueError(f"{owner}: feats must be floating point, got {feats.dtype}")
    b, _, t = feats.shape
    if (not isinstance(masks, torch.Tensor) or masks.shape != (b, 1, t)
            or masks.dtype != torch.bool):
        raise ValueError(f"{owner}: masks must be a (B, 1, T) = {(b, 1, t)} bool tensor, got "
                         f"{getattr(masks, 'dtype', type(masks).__name__)} "
                         f"{tuple(getattr(masks, 'shape', ()))}")
    if masks.device != feats.device:
        raise ValueError(f"{owner}: masks must be on the device of feats ({feats.device}), "
                         f"got {masks.device}")


def check_targets(owner: str, segments, labels, batch: int, num_classes: int,
                  device: torch.device, multi_label: bool = False
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The ground truth of a batch as ``(segments, labels)``: ``B = batch`` float32 (N, 2)
    segment tensors (feature steps) and ``B`` int64 (N,) class-id tensors on ``device``.

    Raise ``ValueError`` (prefixed ``owner``) unless ``segments`` and ``labels`` hold ``batch``
    entries each, every ``segments[i]`` is (N, 2), every ``labels[i]`` (N,) integer class ids
    in ``[0, num_classes)``. With ``multi_label`` a ``labels[i]`` may also be (N, num_classes)
    rows; each becomes one (segment, class) pair per positive entry."""
    if len(segments) != batch or len(labels) != batch:
        raise ValueError(f"{owner}: segments and labels must be lists of B = {batch} "
                         f"tensors, got {len(segments)} and {len(labels)}")
    segs_out, labels_out = [], []
    for i, (seg, lab) in enumerate(zip(segments, labels)):
        seg = torch.as_tensor(seg, dtype=torch.float32, device=device)
        lab = torch.as_tensor(lab, device=device)
        if seg.dim() != 2 or seg.shape[-1] != 2:
            raise ValueError(f"{owner}: segments[{i}] must have shape (N, 2) (feature "
                             f"steps), got {tuple(seg.shape)}")
        n = seg.shape[0]
        if multi_label and lab.dim() == 2 and lab.shape == (n, num_classes):
            rows, classes = (lab > 0).nonzero(as_tuple=True)
            seg, lab = seg[rows], classes
        elif lab.shape != (n,) or lab.is_floating_point() or lab.dtype == torch.bool:
            rows = f" or (N, C) = ({n}, {num_classes}) multi-label rows" if multi_label else ""
            raise ValueError(f"{owner}: labels[{i}] must be (N,) = ({n},) int64 class "
                             f"ids{rows}, got {lab.dtype} {tuple(lab.shape)}")
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= num_classes):
            raise ValueError(f"{owner}: labels[{i}] must be in [0, {num_classes}) "
                             f"(dataset.num_classes), got {lab.tolist()}")
        segs_out.append(seg)
        labels_out.append(lab.long())
    return segs_out, labels_out

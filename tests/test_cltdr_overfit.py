"""CLTDR-GMG training objective end to end on fixed pyramid features (no encoder): the decoder,
the heads, label assignment, both loss branches (release mix) and the inference helpers, with the
dense Trident reference (pytal.ops.reference) standing in for pytal.ops.trident_decode. One batch is driven to
a low loss and its segments are recovered."""
from __future__ import annotations

import torch

from pytal.models.cltdr_gmg import refine_offsets, refined_logits, refined_scores
from pytal.models.common import (LossNormalizer, PointGenerator, assign_targets_batch,
                                 branch_losses, positive_entries, segments_from_offsets,
                                 select_candidates)
from pytal.nn.masked_conv import downsample_mask
from pytal.ops.reference.trident_decode import trident_decode as trident_decode_dense

from _cltdr_reference import DecoderAndHeads

C, NC, BINS = 16, 2, 4
LENGTHS = (32, 16, 8, 4)
STRIDES = (1, 2, 4, 8)
RANGES = ((0, 4), (4, 8), (8, 16), (16, 10000))
STEPS = 100


def test_overfit_one_batch_recovers_segments():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # hundreds of tiny ops: threads only add overhead
    try:
        _overfit()
    finally:
        torch.set_num_threads(threads)


def _overfit():
    torch.manual_seed(0)
    gen = PointGenerator(STRIDES, RANGES)
    points = gen(LENGTHS)
    concat = torch.cat(points)
    feats = [torch.randn(2, C, n) for n in LENGTHS]
    mask0 = (torch.arange(32)[None] < torch.tensor([32, 27])[:, None])[:, None]
    masks = [mask0]
    for n in LENGTHS[1:]:
        masks.append(downsample_mask(masks[-1], 2, n))
    gt_segs = [torch.tensor([[3.0, 9.0], [14.0, 30.0]]), torch.tensor([[2.0, 4.5], [10.0, 22.0]])]
    gt_labels = [torch.tensor([0, 1]), torch.tensor([1, 0])]
    cls_t, reg_t = assign_targets_batch(points, gt_segs, gt_labels, NC)
    valid = torch.cat([m[:, 0] for m in masks], dim=1)
    b, n, c = positive_entries(cls_t, valid)
    num_pos = int(((cls_t.sum(-1) > 0) & valid).sum())

    model = DecoderAndHeads(C, C, len(LENGTHS), NC, BINS)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    norm = LossNormalizer(num_pos, 0.9)
    for step in range(STEPS):
        cls, start, end, offset, ref, ds, de = model(feats, masks)
        dec = torch.cat([trident_decode_dense(s, e, o) for s, e, o in zip(start, end, offset)], dim=1)
        unref = dec[b, n, c]
        refined = refine_offsets(unref, torch.cat(ds, -1)[b, c, n], torch.cat(de, -1)[b, c, n], concat[n, 3])
        cls_all = torch.cat(cls, -1).transpose(1, 2)
        ref_all = torch.cat(ref, -1).transpose(1, 2)
        lr = branch_losses(refined_logits(cls_all, ref_all, "release"), refined, cls_t, reg_t, valid,
                           norm.update(num_pos), cls_loss="varifocal", iou_weight_power=0.2)
        lu = branch_losses(cls_all, unref, cls_t, reg_t, valid, norm.update(num_pos), cls_loss="focal")
        loss = 0.7 * lr["final_loss"] + 0.3 * lu["final_loss"]
        if step == 0:
            first = loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first, (first, loss.item())

    # inference: every ground-truth action is the top-scoring detection of its class, IoU > 0.7
    with torch.no_grad():
        cls, start, end, offset, ref, ds, de = model(feats, masks)
        segs, scores, labels, vids = [], [], [], []
        for level in range(len(LENGTHS)):
            s = refined_scores(cls[level], ref[level], "release").transpose(1, 2)
            vb, t, k, sc = select_candidates(s, masks[level][:, 0], threshold=0.05, topk=100)
            d = trident_decode_dense(start[level], end[level], offset[level])[vb, t, k]
            stride = points[level][t, 3]
            d = refine_offsets(d, ds[level][vb, k, t], de[level][vb, k, t], stride)
            segs.append(segments_from_offsets(points[level][t, 0], d, stride))
            scores.append(sc), labels.append(k), vids.append(vb)
        segs, scores, labels, vids = (torch.cat(x) for x in (segs, scores, labels, vids))
    for v in range(2):
        for seg, lab in zip(gt_segs[v], gt_labels[v]):
            sel = (vids == v) & (labels == lab)
            best = segs[sel][scores[sel].argmax()]
            inter = (torch.minimum(best[1], seg[1]) - torch.maximum(best[0], seg[0])).clamp(min=0)
            iou = inter / (torch.maximum(best[1], seg[1]) - torch.minimum(best[0], seg[0]))
            assert iou > 0.7, (v, seg.tolist(), best.tolist(), iou.item())

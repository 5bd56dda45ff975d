"""Soft-NMS on THUMOS-like candidate sets: pytal's kernels vs pytal's own kernel called in
ActionFormer's per-class loop vs the pure-PyTorch reference, in one run. A self-comparison:
``benchmarks/peers.py`` compares with ActionFormer's package itself.

    python -m benchmarks.soft_nms [--videos 200] [--classes 20] [--reference-videos 5]

Candidate sets: per video, 200 to 4,000 candidates in overlapping clusters around actions
(jittered boundaries, mostly the action's class, scores decreasing away from the action).
The per-class loop is the call pattern of ActionFormer / TriDet: for every video, a Python
loop over its classes, each calling a sequential C++ Soft-NMS on that class's candidates
(here pytal's kernel on a single group, one thread, not the peer's), then a per-video sort
and top-k.
"""
from __future__ import annotations

import argparse

import torch

import pytal
from benchmarks.common import environment, print_table, time_one
from pytal.ops import soft_nms
from pytal.postprocess import batched_nms

NMS = dict(iou_threshold=0.1, sigma=0.5, min_score=1e-3, method="gaussian")


def thumos_like_candidates(num_videos: int, num_classes: int, *, seed: int = 0,
                           min_per_video: int = 200, max_per_video: int = 4000):
    """(segments (N, 2) seconds, scores (N,), labels (N,), video_index (N,))."""
    g = torch.Generator().manual_seed(seed)
    segs, scores, labels, videos = [], [], [], []
    for v in range(num_videos):
        n = int(torch.randint(min_per_video, max_per_video + 1, (1,), generator=g))
        duration = 60.0 + float(torch.rand(1, generator=g)) * 540.0
        num_actions = int(torch.randint(3, 30, (1,), generator=g))
        centre = torch.rand(num_actions, generator=g) * duration
        length = 1.0 + torch.rand(num_actions, generator=g) ** 2 * 30.0
        action_class = torch.randint(0, num_classes, (num_actions,), generator=g)
        a = torch.randint(0, num_actions, (n,), generator=g)
        jitter = torch.randn(n, 2, generator=g) * (0.25 * length[a])[:, None]
        start = centre[a] - length[a] / 2 + jitter[:, 0]
        end = torch.maximum(centre[a] + length[a] / 2 + jitter[:, 1], start + 0.1)
        confusion = torch.rand(n, generator=g) < 0.3
        cls = torch.where(confusion, torch.randint(0, num_classes, (n,), generator=g),
                          action_class[a])
        score = torch.rand(n, generator=g) * torch.exp(-jitter.abs().sum(1) / length[a])
        segs.append(torch.stack([start, end], 1))
        scores.append(score)
        labels.append(cls)
        videos.append(torch.full((n,), v, dtype=torch.long))
    return torch.cat(segs), torch.cat(scores), torch.cat(labels), torch.cat(videos)


def per_class_loop(segments, scores, labels, videos, max_seg_num=200):
    """ActionFormer-style post-processing: per video, per class, sequential Soft-NMS."""
    results = []
    for v in torch.unique(videos).tolist():
        in_video = (videos == v).nonzero().squeeze(1)
        seg_v, score_v, label_v = segments[in_video], scores[in_video], labels[in_video]
        out_seg, out_score, out_label = [], [], []
        for c in torch.unique(label_v).tolist():
            idx = (label_v == c).nonzero().squeeze(1)
            keep, new_scores = torch.ops.pytal.soft_nms(
                seg_v[idx].contiguous(), score_v[idx].contiguous(), None,
                NMS["iou_threshold"], NMS["sigma"], NMS["min_score"], NMS["method"], -1)
            out_seg.append(seg_v[idx][keep])
            out_score.append(new_scores)
            out_label.append(label_v[idx][keep])
        seg, score, label = torch.cat(out_seg), torch.cat(out_score), torch.cat(out_label)
        order = torch.argsort(score, descending=True)[:max_seg_num]
        results.append((seg[order], score[order], label[order]))
    return results


def batch_groups(labels, videos, num_classes):
    return videos * num_classes + labels


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--reference-videos", type=int, default=5,
                        help="the pure-PyTorch reference is timed on this many videos and "
                             "scaled to the batch (0 skips it)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    if not pytal.ops.extension_loaded():
        raise SystemExit(f"pytal._C is not built: {pytal.ops.backend_info()['load_error']}")
    segments, scores, labels, videos = thumos_like_candidates(args.videos, args.classes)
    groups = batch_groups(labels, videos, args.classes)
    print(f"soft_nms benchmark: {environment()}")
    print(f"candidates: {args.videos} videos, {args.classes} classes, {len(scores)} in all "
          f"({len(scores) / args.videos:.0f} per video), {len(torch.unique(groups))} groups; "
          f"gaussian Soft-NMS, sigma 0.5, min_score 1e-3, no per-group limit")

    threads = torch.get_num_threads()
    rows = []

    def timed(fn, *, num_threads=threads, cuda=False):
        torch.set_num_threads(num_threads)
        try:
            return time_one(fn, repeats=args.repeats, device="cuda" if cuda else "cpu").median
        finally:
            torch.set_num_threads(threads)

    t_loop = timed(lambda: per_class_loop(segments, scores, labels, videos), num_threads=1)
    rows.append(("per-class loop of pytal's kernel, 1 thread", t_loop,
                 "ActionFormer's call pattern, not its code"))

    def kernel():
        return soft_nms(segments, scores, groups, backend="extension", **NMS)

    rows.append(("pytal CPU kernel, 1 thread", timed(kernel, num_threads=1), ""))
    rows.append((f"pytal CPU kernel, {threads} threads", timed(kernel), ""))
    rows.append((f"pytal batched_nms (CPU, {threads} threads, top-200)",
                 timed(lambda: batched_nms(segments, scores, labels, videos, **NMS)),
                 "whole post-processing"))

    if torch.cuda.is_available() and pytal.ops.backend_info()["cuda"]:
        def cuda_kernel():
            keep, new = soft_nms(segments.cuda(), scores.cuda(), groups.cuda(),
                                 backend="extension", **NMS)
            return keep.cpu(), new.cpu()

        rows.append(("pytal CUDA kernel (host copies included)", timed(cuda_kernel, cuda=True),
                     torch.cuda.get_device_name()))
    else:
        rows.append(("pytal CUDA kernel", None, "not measured: no GPU here"))

    if args.reference_videos > 0:
        m = videos < args.reference_videos
        sub = (segments[m], scores[m], groups[m])
        t_ref = time_one(lambda: soft_nms(*sub, backend="reference", **NMS), repeats=1).median
        scale = len(scores) / int(m.sum())
        rows.append(("pure-PyTorch reference", t_ref * scale,
                     f"timed on {args.reference_videos} videos, scaled by candidates"))
    print_table("time for the whole batch", rows, baseline=rows[0][0])

    # Same kept candidates, same order, as the reference on a slice.
    m = videos < 3
    ref = soft_nms(segments[m], scores[m], groups[m], backend="reference", **NMS)
    ext = soft_nms(segments[m], scores[m], groups[m], backend="extension", **NMS)
    same = torch.equal(ref[0], ext[0])
    rel = ((ext[1] - ref[1]).abs() / ref[1]).max().item() if same and len(ref[1]) else float("nan")
    print(f"\nextension vs reference on 3 videos: same kept indices and order: {same}; "
          f"max relative score difference {rel:.2e}")


if __name__ == "__main__":
    main()

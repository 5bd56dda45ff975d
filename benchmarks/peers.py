"""pytal against the peers themselves: the same inputs, one process, interleaved calls.

    python -m benchmarks.peers [--repeats 15] [--batch-videos 40] [--threads 1]

Soft-NMS post-processing: ``pytal.postprocess.batched_nms`` against ActionFormer's
``batched_nms`` from its registry package (``pip install actionformer==1.5.0``: a per-class
Python loop over its C++ Soft-NMS, one video per call), each called the way its users call
it, on three kinds of candidate sets:

* THUMOS-like: one video, about 2,100 candidates, 20 classes, multiclass (a Soft-NMS group
  per class), top 200;
* ActivityNet-like: one video, class-agnostic (one group), 2,000 to 10,000 candidates, top
  100, with and without segment voting;
* a batch of 40 THUMOS-like videos: pytal in one call, the peer once per video.

Times are medians (and bests) over ``--repeats`` rounds in which the two sides alternate;
each side is called once first, untimed (its first-call cost is printed separately). The
ratio is the peer's median over pytal's. "outputs" compares the detections: the same
(segment, score, label) rows (compared after sorting, since the peer's final sort is not
stable), or, with voting, the largest difference of the voted boundaries.

Without the peer installed the benchmark says so and measures nothing. The package's
top-level import needs its training dependencies (pandas, scipy, ...); where they are
missing, its ``actionformer/utils/nms.py`` is loaded on its own (it needs only torch and the
package's compiled ``nms_1d_cpu``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from types import ModuleType
from typing import Callable, Optional

import torch

from benchmarks.soft_nms import thumos_like_candidates
from pytal.bench import environment, load_average
from pytal.postprocess import batched_nms

PEER = "actionformer==1.5.0"

#: ActionFormer's THUMOS14 and ActivityNet test settings (its configs' ``test_cfg``).
THUMOS = dict(iou_threshold=0.1, min_score=0.001, max_seg_num=200, sigma=0.5,
              multiclass=True, voting_thresh=0.0)
ACTIVITYNET = dict(iou_threshold=0.1, min_score=0.001, max_seg_num=100, sigma=0.75,
                   multiclass=False)


# ------------------------------------------------------------------------------ the peer

def load_actionformer_nms() -> tuple[Optional[ModuleType], str]:
    """(ActionFormer's ``utils.nms`` module or None, a line saying what was loaded)."""
    try:
        from actionformer.utils import nms  # type: ignore[import-not-found]
        how = "package import"
    except ImportError as error:
        spec = importlib.util.find_spec("actionformer")
        if spec is None or not spec.submodule_search_locations:
            return None, f"not installed ({error}); pip install {PEER} to compare with it"
        path = os.path.join(list(spec.submodule_search_locations)[0], "utils", "nms.py")
        module_spec = importlib.util.spec_from_file_location("actionformer_utils_nms", path)
        nms = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(nms)
        how = f"{path} loaded on its own (package import failed: {error})"
    if not nms.HAS_CPP_NMS:
        return nms, (f"{how}; its C++ extension nms_1d_cpu is NOT built, so the peer runs its "
                     f"pure-Python fallback")
    return nms, f"{how}; C++ extension nms_1d_cpu built"


def peer_one_video(nms: ModuleType, segments, scores, labels, cfg, voting_thresh):
    return nms.batched_nms(segments, scores, labels, cfg["iou_threshold"], cfg["min_score"],
                           cfg["max_seg_num"], use_soft_nms=True,
                           multiclass=cfg["multiclass"], sigma=cfg["sigma"],
                           voting_thresh=voting_thresh)


def pytal_call(segments, scores, labels, cfg, voting_thresh, videos=None):
    return batched_nms(segments, scores, labels, videos, iou_threshold=cfg["iou_threshold"],
                       sigma=cfg["sigma"], min_score=cfg["min_score"], method="gaussian",
                       multiclass=cfg["multiclass"], voting_thresh=voting_thresh,
                       max_seg_num=cfg["max_seg_num"], voting_weight="score_iou")


# ------------------------------------------------------------------------------ candidates

def activitynet_like_candidates(n: int, *, seed: int):
    """One video's class-agnostic candidates: (segments (n, 2) seconds, scores (n,),
    labels (n,)). A few long actions; candidates jittered around them, a quarter of them
    anywhere in the video; a fifth repeat another candidate's segment (the same segment
    proposed for several classes) with a different score."""
    g = torch.Generator().manual_seed(seed)
    duration = 30.0 + float(torch.rand(1, generator=g)) * 200.0
    num_actions = int(torch.randint(1, 4, (1,), generator=g))
    length = duration * (0.1 + 0.6 * torch.rand(num_actions, generator=g))
    start = torch.rand(num_actions, generator=g) * (duration - length)
    a = torch.randint(0, num_actions, (n,), generator=g)
    jitter = torch.randn(n, 2, generator=g) * (0.2 * length[a])[:, None]
    s = (start[a] + jitter[:, 0]).clamp(0, duration)
    e = torch.maximum((start[a] + length[a] + jitter[:, 1]).clamp(0, duration), s)
    background = torch.rand(n, generator=g) < 0.25
    bs = torch.rand(n, generator=g) * duration
    be = torch.minimum(bs + torch.rand(n, generator=g) ** 2 * duration, torch.tensor(duration))
    s, e = torch.where(background, bs, s), torch.where(background, be, e)
    score = torch.rand(n, generator=g) ** 3
    repeat = torch.rand(n, generator=g) < 0.2
    source = torch.randint(0, n, (n,), generator=g)
    s, e = torch.where(repeat, s[source], s), torch.where(repeat, e[source], e)
    labels = torch.randint(0, 200, (n,), generator=g)
    return torch.stack([s, e], 1), score, labels


# ------------------------------------------------------------------------------ comparing

def _rows(segments, scores, labels) -> list[tuple]:
    return sorted(zip(scores.tolist(), labels.tolist(), segments[:, 0].tolist(),
                      segments[:, 1].tolist()), reverse=True)


def compare_outputs(ours, theirs, voted: bool) -> str:
    seg_a, score_a, label_a = ours[:3]
    seg_b, score_b, label_b = theirs[:3]
    if len(score_a) != len(score_b):
        return f"DIFFER: {len(score_a)} vs {len(score_b)} detections"
    if not voted:
        same = _rows(seg_a, score_a, label_a) == _rows(seg_b, score_b, label_b)
        return "identical" if same else "DIFFER"
    # Voted boundaries are a weighted mean computed in a different order: compare each row
    # with the peer's row of the same score and label.
    a = sorted(zip(score_a.tolist(), label_a.tolist(), range(len(score_a))), reverse=True)
    b = sorted(zip(score_b.tolist(), label_b.tolist(), range(len(score_b))), reverse=True)
    if [r[:2] for r in a] != [r[:2] for r in b]:
        return "DIFFER: scores or labels"
    ia = torch.tensor([r[2] for r in a], dtype=torch.long)
    ib = torch.tensor([r[2] for r in b], dtype=torch.long)
    diff = (seg_a[ia] - seg_b[ib]).abs().max().item() if len(ia) else 0.0
    return f"same scores and labels, voted boundaries within {diff:.1e} s"


# ------------------------------------------------------------------------------ timing

def interleaved(sides: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """First call of each side, then ``repeats`` rounds alternating the sides' order."""
    stats = {}
    for name, fn in sides.items():
        t0 = time.perf_counter()
        fn()
        stats[name] = {"first": time.perf_counter() - t0, "samples": []}
    names = list(sides)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            sides[name]()
            stats[name]["samples"].append(time.perf_counter() - t0)
    for s in stats.values():
        s["median"] = statistics.median(s["samples"])
        s["best"] = min(s["samples"])
    return stats


def report(title: str, stats: dict[str, dict], outputs: str) -> None:
    ours, theirs = stats["pytal"], stats["actionformer"]
    print(f"  {title:<44} pytal {ours['median'] * 1e3:8.2f} ms (best {ours['best'] * 1e3:7.2f})"
          f"  actionformer {theirs['median'] * 1e3:8.2f} ms (best {theirs['best'] * 1e3:7.2f})"
          f"  ratio {theirs['median'] / ours['median']:5.2f}x"
          f" (best-of {theirs['best'] / ours['best']:5.2f}x)  outputs: {outputs}")
    print(f"  {'':<44} first call: pytal {ours['first'] * 1e3:.2f} ms, "
          f"actionformer {theirs['first'] * 1e3:.2f} ms")


def run_soft_nms(nms: ModuleType, args) -> None:
    print("\nSoft-NMS post-processing (pytal.postprocess.batched_nms vs ActionFormer's "
          "batched_nms), float32, same candidates")
    for seed in range(args.sets):
        seg, sc, lab, _ = thumos_like_candidates(1, 20, seed=100 + seed, min_per_video=1800,
                                                 max_per_video=2400)
        stats = interleaved({
            "pytal": lambda: pytal_call(seg, sc, lab, THUMOS, 0.0),
            "actionformer": lambda: peer_one_video(nms, seg, sc, lab, THUMOS, 0.0),
        }, args.repeats)
        outputs = compare_outputs(pytal_call(seg, sc, lab, THUMOS, 0.0),
                                  peer_one_video(nms, seg, sc, lab, THUMOS, 0.0), False)
        report(f"THUMOS-like video {seed}: {len(sc)} cand., 20 cls", stats, outputs)

    for n in args.activitynet_sizes:
        seg, sc, lab = activitynet_like_candidates(n, seed=n)
        for voting in (0.0, 0.9):
            stats = interleaved({
                "pytal": lambda: pytal_call(seg, sc, lab, ACTIVITYNET, voting),
                "actionformer": lambda: peer_one_video(nms, seg, sc, lab, ACTIVITYNET, voting),
            }, args.repeats)
            outputs = compare_outputs(pytal_call(seg, sc, lab, ACTIVITYNET, voting),
                                      peer_one_video(nms, seg, sc, lab, ACTIVITYNET, voting),
                                      voting > 0)
            what = f"voting {voting}" if voting else "no voting"
            report(f"ActivityNet-like: {n} cand., agnostic, {what}", stats, outputs)

    seg, sc, lab, vid = thumos_like_candidates(args.batch_videos, 20, seed=7,
                                               min_per_video=1800, max_per_video=2400)
    per_video = [(vid == v).nonzero().squeeze(1) for v in range(args.batch_videos)]

    def peer_batch():
        return [peer_one_video(nms, seg[i], sc[i], lab[i], THUMOS, 0.0) for i in per_video]

    stats = interleaved({
        "pytal": lambda: pytal_call(seg, sc, lab, THUMOS, 0.0, videos=vid),
        "actionformer": peer_batch,
    }, max(3, args.repeats // 3))
    ours = pytal_call(seg, sc, lab, THUMOS, 0.0, videos=vid)
    theirs = peer_batch()
    same = all(compare_outputs([t[ours[3] == v] for t in ours[:3]], theirs[v], False)
               == "identical" for v in range(args.batch_videos))
    report(f"batch of {args.batch_videos} THUMOS-like videos: {len(sc)} cand.", stats,
           "identical" if same else "DIFFER")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sets", type=int, default=3, help="THUMOS-like videos timed")
    parser.add_argument("--activitynet-sizes", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--batch-videos", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(f"peers benchmark: {environment()}; load average before: {load_average()}")
    nms, how = load_actionformer_nms()
    print(f"peer {PEER}: {how}")
    if nms is None:
        print("Soft-NMS against ActionFormer: skipped (peer not installed)")
    else:
        run_soft_nms(nms, args)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()

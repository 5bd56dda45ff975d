"""Detection mAP: pytal's vectorised evaluator vs a per-prediction loop, on real annotations.

    python -m benchmarks.evaluation [--annotations PATH] [--subset validation]
                                    [--predictions 50000] [--tiou activitynet] [--seed 0]

Ground truth: the real ActivityNet v1.3 validation annotations (4,728 videos) by default.
Predictions: synthetic (:func:`random_predictions`): jittered copies of ground-truth segments
with right or wrong labels, and random segments, with continuous random scores (tie-free).

:func:`reference_evaluate` is the per-prediction loop: the algorithm of the official
ActivityNet evaluator written out one prediction at a time (independently of
pytal.evaluation). Tests use it as the executable specification.

pytal is timed twice: as installed (the JSON walkers of the compiled module ``pytal._tables``)
and with ``pytal.io.json_tables.use_compiled(False)`` (its Python walkers, the fallback when
nothing was compiled).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from benchmarks.common import environment, time_interleaved

DEFAULT_ANNOTATIONS = os.path.join(os.path.dirname(__file__), "..", "pytal", "resources",
                                   "activitynet13.json.gz")


def _tiou(segment: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(segment[1], candidates[:, 1])
                    - np.maximum(segment[0], candidates[:, 0]), 0, None)
    union = (candidates[:, 1] - candidates[:, 0]) + (segment[1] - segment[0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _interpolated_ap(precision: Sequence[float], recall: Sequence[float]) -> float:
    mprec = [0.0, *precision, 0.0]
    mrec = [0.0, *recall, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return float(sum((mrec[i] - mrec[i - 1]) * mprec[i]
                     for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]))


def _class_ap(detections: list, gt_by_video: Mapping[str, np.ndarray],
              thresholds: Sequence[float]) -> list[float]:
    """AP of one class; ``detections``: [(score, video_id, [start, end])] in file order."""
    detections = sorted(detections, key=lambda d: -d[0])                # stable
    num_positives = sum(len(g) for g in gt_by_video.values())
    locked = {v: np.zeros((len(thresholds), len(g)), bool) for v, g in gt_by_video.items()}
    tp = np.zeros((len(thresholds), len(detections)))
    for i, (_, video_id, segment) in enumerate(detections):
        gt = gt_by_video.get(video_id)
        if gt is None:
            continue                                                      # false positive
        iou = _tiou(segment, gt)
        by_iou = np.argsort(-iou, kind="stable")
        for t, threshold in enumerate(thresholds):
            for j in by_iou:
                if iou[j] < threshold:
                    break
                if locked[video_id][t, j]:
                    continue
                locked[video_id][t, j] = True
                tp[t, i] = 1
                break
    if not detections:
        return [0.0] * len(thresholds)
    ap = []
    for t in range(len(thresholds)):
        tp_cum = np.cumsum(tp[t])
        rank = np.arange(1, len(detections) + 1)
        ap.append(_interpolated_ap((tp_cum / rank).tolist(), (tp_cum / num_positives).tolist()))
    return ap


def reference_evaluate(ground_truth: Mapping[str, Any], predictions: Mapping[str, Any], *,
                       subset: str, tiou_thresholds: Sequence[float]) -> dict[str, Any]:
    """The official ActivityNet detection algorithm, one prediction at a time (loaded dicts)."""
    gt: dict[str, dict[str, list]] = {}
    for video_id, video in ground_truth["database"].items():
        if video["subset"] != subset:
            continue
        for ann in video.get("annotations", []):
            gt.setdefault(ann["label"], {}).setdefault(video_id, []).append(ann["segment"])
    gt_arrays = {label: {v: np.asarray(s, np.float64) for v, s in videos.items()}
                 for label, videos in gt.items()}
    detections: dict[str, list] = {label: [] for label in gt}
    for video_id, dets in predictions["results"].items():
        for d in dets:
            if d["label"] in detections:
                detections[d["label"]].append((float(d["score"]), video_id, d["segment"]))
    labels = sorted(gt)
    per_class = {label: _class_ap(detections[label], gt_arrays[label], tiou_thresholds)
                 for label in labels}
    m_ap = np.mean([per_class[label] for label in labels], axis=0)
    return {"tiou_thresholds": list(tiou_thresholds), "mAP": m_ap.tolist(),
            "average_mAP": float(m_ap.mean()), "per_class_ap": per_class}


def random_predictions(ground_truth: Mapping[str, Any], *, subset: str, num_predictions: int,
                       seed: int = 0, outside_videos: int = 0) -> dict[str, Any]:
    """A tie-free synthetic submission for the videos of ``subset``.

    About half the detections are jittered copies of a ground-truth segment of the video (with
    its label 80% of the time), the rest random segments with random labels; scores are
    uniform floats, higher on average for the better detections. ``outside_videos`` adds videos
    that are not in the ground truth.
    """
    rng = np.random.default_rng(seed)
    database = ground_truth["database"]
    videos = [v for v, info in database.items() if info["subset"] == subset]
    labels = sorted({a["label"] for v in videos for a in database[v]["annotations"]})
    per_video = rng.multinomial(num_predictions, np.full(len(videos) + outside_videos,
                                                         1.0 / (len(videos) + outside_videos)))
    results: dict[str, list] = {}
    for i, count in enumerate(per_video):
        if i < len(videos):
            video_id = videos[i]
            info = database[video_id]
            duration, anns = float(info["duration"]), info["annotations"]
        else:
            video_id, duration, anns = f"outside_{i}", 100.0, []
        dets = []
        for _ in range(count):
            if anns and rng.random() < 0.5:
                ann = anns[int(rng.integers(len(anns)))]
                s, e = ann["segment"]
                jitter = rng.normal(0, 0.15 * max(e - s, 0.5), size=2)
                s, e = s + jitter[0], max(e + jitter[1], s + jitter[0] + 0.1)
                label = ann["label"] if rng.random() < 0.8 else labels[int(rng.integers(len(labels)))]
                score = 0.3 + 0.7 * rng.random()
            else:
                s = rng.uniform(0, duration)
                e = min(duration, s + rng.exponential(0.1 * duration) + 0.1)
                label = labels[int(rng.integers(len(labels)))]
                score = 0.6 * rng.random()
            dets.append({"label": label, "score": float(score), "segment": [float(s), float(e)]})
        results[video_id] = dets
    return {"version": "synthetic", "results": results, "external_data": {}}


def stage_times(ground_truth: Mapping[str, Any], predictions: Mapping[str, Any], *, subset: str,
                tiou_thresholds: Sequence[float], repeats: int) -> dict[str, float]:
    """Median CPU seconds of the three stages of ``pytal.evaluation.evaluate`` (its internals):
    ground truth (``load_instances`` and class indices), prediction parsing, and ranking +
    matching + AP (with the compiled JSON walkers when built)."""
    from pytal.evaluation import detection

    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    names = ("ground truth", "predictions", "ranking, matching, AP")
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        marks = [time.process_time()]
        gt = detection._GroundTruth(ground_truth, subset)
        marks.append(time.process_time())
        pred = detection._Predictions(predictions, gt, "false_positive")
        marks.append(time.process_time())
        detection.average_precision(gt, pred, thresholds)
        marks.append(time.process_time())
        for name, start, end in zip(times, marks, marks[1:]):
            times[name].append(end - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> None:
    import json

    from pytal.io import json_tables
    from pytal.evaluation import evaluate, parse_tiou_thresholds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", default=os.path.normpath(DEFAULT_ANNOTATIONS))
    parser.add_argument("--subset", default="validation")
    parser.add_argument("--predictions", type=int, default=50_000)
    parser.add_argument("--tiou", default="activitynet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=9, help="runs of pytal's evaluator")
    parser.add_argument("--loop-repeats", type=int, default=3, help="runs of the loop")
    args = parser.parse_args(argv)

    from pytal.io.jsonio import read_json

    ground_truth, _ = read_json(args.annotations)
    thresholds = parse_tiou_thresholds(args.tiou)
    predictions = random_predictions(ground_truth, subset=args.subset,
                                     num_predictions=args.predictions, seed=args.seed)
    num_videos = sum(1 for v in ground_truth["database"].values() if v["subset"] == args.subset)

    def fast_fn():
        return evaluate(ground_truth, predictions, subset=args.subset, tiou_thresholds=thresholds)

    def slow_fn():
        return reference_evaluate(ground_truth, predictions, subset=args.subset,
                                  tiou_thresholds=thresholds)

    def walked_fn():
        with json_tables.use_compiled(False):
            return fast_fn()

    fast, walked, slow = fast_fn(), walked_fn(), slow_fn()                 # also warm-up
    assert walked == fast, "the compiled and the Python JSON walkers disagree"
    timings = time_interleaved({"fast": fast_fn, "walked": walked_fn, "slow": slow_fn}, warmup=0,
                               repeats={"fast": args.repeats, "walked": args.repeats,
                                        "slow": args.loop_repeats})
    (fast_wall, fast_cpu), (walked_wall, walked_cpu), (slow_wall, slow_cpu) = (
        (timings[k].median, timings[k].cpu_median) for k in ("fast", "walked", "slow"))

    diff = max(abs(a - b) for a, b in zip(fast["mAP"], slow["mAP"]))
    class_diff = max(abs(a - b) for label in fast["per_class_ap"]
                     for a, b in zip(fast["per_class_ap"][label], slow["per_class_ap"][label]))
    print(f"\nDetection mAP, {args.predictions:,} predictions over {num_videos:,} videos "
          f"({os.path.basename(args.annotations)}, subset {args.subset!r}, "
          f"{len(thresholds)} tIoU thresholds); {environment()}")
    print(f"  {'implementation':<42} {'wall':>10} {'CPU':>10}   (medians of interleaved runs; "
          "CPU = this process)")
    walkers = "compiled" if json_tables.available() else "NOT BUILT: Python"
    for name, wall, cpu in ((f"pytal.evaluation.evaluate ({walkers} walkers)", fast_wall, fast_cpu),
                            ("pytal.evaluation.evaluate (Python walkers)", walked_wall, walked_cpu),
                            ("per-prediction loop (reference)", slow_wall, slow_cpu)):
        print(f"  {name:<42} {wall * 1e3:>7.1f} ms {cpu * 1e3:>7.1f} ms")
    print(f"  speed-up: {slow_wall / fast_wall:.1f}x wall, {slow_cpu / fast_cpu:.1f}x CPU "
          f"(Python walkers: {slow_wall / walked_wall:.1f}x wall, {slow_cpu / walked_cpu:.1f}x CPU)")
    print("  both take the already loaded JSON dicts (parsing the files is timed for neither)")
    stages = stage_times(ground_truth, predictions, subset=args.subset, tiou_thresholds=thresholds,
                         repeats=args.repeats)
    print("  pytal stages (median CPU): " + ", ".join(f"{name} {seconds * 1e3:.1f} ms"
                                                    for name, seconds in stages.items()))
    print(f"  max |mAP difference| over thresholds: {diff:.3g}; over per-class APs: {class_diff:.3g}")
    print(f"  average mAP: {fast['average_mAP']:.6f} (loop: {slow['average_mAP']:.6f})")


if __name__ == "__main__":
    main()

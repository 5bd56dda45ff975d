"""pytal's CLTDR-GMG against the authors' public code itself: inference per video and a training
step, same weights, same inputs, one process, calls interleaved.

    python -m benchmarks.peers_cltdr_gmg --release /path/to/CLTDR-GMG [--videos 8]
        [--train-steps 3] [--train-length T] [--input-dim 256] [--batch K] [--root DIR]
        [--threads 1] [--profile T1,T2,...]

The public code (github.com/LiQiang0307/CLTDR-GMG, never part of pytal) is a checkout given by
``--release`` whose ``libs/utils`` holds its compiled ``nms_1d_cpu``; without it the benchmark
says so and measures nothing. Both models are those of :mod:`benchmarks.cltdr_gmg_release`:
its ``thumos_i3d_focalloss`` config and pytal's ``cltdr_gmg_thumos`` with ``model.variant=
release`` and the same weights (the public model's random ones + N(0, 0.005), converted), ``--input-dim`` input channels
on both sides, input noise and drop path off (so that outputs can be compared).

Inputs: synthetic features (``pytal.data.synthetic.write_dataset``, seed 0) on the real
THUMOS14 layout: ``--videos`` test videos (a seeded sample, their real lengths) and
``2 x --train-steps`` validation videos, cropped to ``max_seq_len`` as the training loader
crops them, two per training batch; ``--train-length T`` instead gives random videos of exactly
T steps (no padding).

* inference per video: the public model on one video (its only mode), pytal's ``detect`` on
  one video (``model.inference_padding`` ``max_seq_len``, the release-equivalent default, and
  ``stride``, the short form; each also under bfloat16 autocast, what ``eval.amp: bf16``
  does), and with ``--batch K`` pytal on batches of K videos (time per video = batch time /
  K);
* a training step: forward, loss, backward, gradient clipping (L2 1.0) and an AdamW step;
* with ``--profile``, where the time of one inference goes, for a random video of each given
  length: the wall time inside each direct submodule of each model (pytal: encoder, neck,
  decoupling modules, heads; the public code: its backbone, neck and heads) and the rest
  (padding, decoding, NMS), median of 3 calls after a warm-up.

Each side is called once first on the first input (its first-call cost, printed apart), then
once more untimed; the timed calls then take turns, one input at a time, the order rotated
from input to input. Printed: the median (and best) per video and per step, the ratios (public
/ pytal), and whether the outputs agree: the public code's best 200 detections of each video
found in pytal's (same label, score and boundaries within 1e-3; for the bfloat16 rows also
within 0.05) and the first step's losses (relative difference).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Optional, Sequence

import torch

from benchmarks.cltdr_gmg_release import build_pair, import_release, match_detections
from pytal.bench_harness import environment, load_average, time_interleaved
from pytal.engine.amp import autocast_context

PUBLIC_CONFIG = "thumos_i3d_focalloss"
PACKAGED = "cltdr_gmg_thumos"
LAYOUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pytal",
                      "resources", "thumos14.json")
META_KEYS = ("video_id", "fps", "duration", "feat_stride", "feat_num_frames")
TOP, ATOL = 200, 1e-3
#: score and boundary (seconds) tolerance of the bfloat16 rows' second agreement count
BF16_ATOL = 0.05
#: std of the noise added to the public model's initial weights: enough for the zero-initialised
#: branches to count, small enough that the full-size model's scores stay below 1 (saturated
#: scores tie, and the order of ties is rounding)
WEIGHT_NOISE = 0.005


# ------------------------------------------------------------------------------ inputs

def thumos_videos(root: str, cfg: Any, *, test: int, train: int, seed: int = 0
                  ) -> tuple[list[dict], list[dict]]:
    """(``test`` test videos, ``train`` validation videos cropped to ``max_seq_len`` as the
    training loader does), synthetic ``dataset.input_dim``-d features on the THUMOS14 layout,
    written under ``root`` (reused when already there). Items: the dicts of
    :class:`pytal.data.FeatureDataset` (feats (C, T), segments in feature steps, labels)."""
    from pytal.data.synthetic import write_dataset
    d = cfg.dataset
    ds = write_dataset(root, feat_dim=d.input_dim, seed=seed, layout=LAYOUT,
                       subsets=["validation", "test"], max_videos=max(test, train, 1),
                       feat_stride=int(d.feat_stride), num_frames=int(d.num_frames), reuse=True)
    tests = ds.dataset("test")
    trains = ds.dataset("validation", training=True, max_seq_len=d.max_seq_len,
                        crop_ratio=d.crop_ratio, trunc_thresh=d.trunc_thresh,
                        generator=torch.Generator().manual_seed(seed))
    return ([tests[i] for i in range(min(test, len(tests)))],
            [trains[i] for i in range(min(train, len(trains)))])


def full_length_videos(cfg: Any, count: int, length: int, seed: int = 0) -> list[dict]:
    """``count`` training videos of exactly ``length`` steps: standard normal features and 8
    random segments (8 to 128 steps) of random classes."""
    g = torch.Generator().manual_seed(seed)
    d = cfg.dataset
    out = []
    for i in range(count):
        width = 8 + torch.rand(8, generator=g) * 120
        start = torch.rand(8, generator=g) * (length - width)
        out.append({"video_id": f"full{i}", "feats": torch.randn(d.input_dim, length, generator=g),
                    "segments": torch.stack([start, start + width], 1),
                    "labels": torch.randint(0, d.num_classes, (8,), generator=g),
                    "fps": 30.0, "duration": (length * 4 + 16) / 30.0, "feat_stride": 4,
                    "feat_num_frames": 16})
    return out


def stack(videos: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, T) features zero-padded to the longest video and (B, 1, T) bool masks."""
    t = max(v["feats"].shape[1] for v in videos)
    x = torch.zeros(len(videos), videos[0]["feats"].shape[0], t)
    mask = torch.zeros(len(videos), 1, t, dtype=torch.bool)
    for i, v in enumerate(videos):
        x[i, :, :v["feats"].shape[1]] = v["feats"]
        mask[i, :, :v["feats"].shape[1]] = True
    return x, mask


# ------------------------------------------------------------------------------ the two sides

def pytal_detect(model: torch.nn.Module, videos: Sequence[dict], amp: str = "none"
                 ) -> Callable[[], list[dict]]:
    """pytal's inference on ``videos`` in one ``detect`` call, under ``amp`` autocast (an
    ``eval.amp`` value)."""
    x, mask = stack(videos)
    meta = [{k: v[k] for k in META_KEYS} for v in videos]

    def call() -> list[dict]:
        with torch.no_grad(), autocast_context(amp, x.device, "eval.amp"):
            return model.detect(x, mask, meta)
    return call


def public_detect(release: torch.nn.Module, video: dict) -> Callable[[], dict]:
    """The public code's inference on one video (it takes one per call)."""
    def call() -> dict:
        with torch.no_grad():
            return release([dict(video)])[0]
    return call


def train_step(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.nn.Parameter],
               optimizer: torch.optim.Optimizer) -> Callable[[], float]:
    """One optimisation step: forward and loss, backward, clipping (L2 1.0), AdamW step."""
    def call() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return float(loss.detach())
    return call


def pytal_loss(model: torch.nn.Module, videos: Sequence[dict]) -> Callable[[], torch.Tensor]:
    x, mask = stack(videos)
    segments = [v["segments"] for v in videos]
    labels = [v["labels"] for v in videos]
    return lambda: model.losses(x, mask, segments, labels)["loss"]


def public_loss(release: torch.nn.Module, videos: Sequence[dict]) -> Callable[[], torch.Tensor]:
    return lambda: release([dict(v) for v in videos])["final_loss"]


def optimizer_of(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.035)


# ------------------------------------------------------------------------------ timing

def timed_rounds(rounds: Sequence[dict[str, Callable[[], object]]]
                 ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per side, the time of each round's call (one input per round, the sides' order rotated
    from round to round) and the first call's time (the first round's inputs, called twice
    before timing: a first call, then a warm-up)."""
    names = list(rounds[0])
    first = {name: t.first for name, t in time_interleaved(rounds[0], repeats=1, warmup=1).items()}
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, fns in enumerate(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        result = time_interleaved({n: fns[n] for n in order}, repeats=1, warmup=0)
        for name in names:
            times[name].append(result[name].samples[0])
    return times, first


def summary(name: str, samples: Sequence[float], first: float, reference: Optional[Sequence[float]]
            ) -> str:
    med = statistics.median(samples)
    line = f"  {name:<42} median {med:7.3f} s  best {min(samples):7.3f} s  first call {first:7.3f} s"
    if reference is not None:
        line += f"  public/pytal {statistics.median(reference) / med:5.2f}x"
    return line


def module_times(model: torch.nn.Module, call: Callable[[], object], repeats: int = 3
                 ) -> tuple[float, dict[str, float]]:
    """Median wall time (s) of ``call()`` and, per direct submodule of ``model``, the median
    time spent inside it during one call (all its calls summed), after one warm-up call."""
    spent: dict[str, float] = {}
    entered: dict[str, float] = {}
    handles = []
    for name, child in model.named_children():
        handles.append(child.register_forward_pre_hook(
            lambda mod, args, n=name: entered.__setitem__(n, time.perf_counter())))
        handles.append(child.register_forward_hook(
            lambda mod, args, out, n=name: spent.__setitem__(
                n, spent.get(n, 0.0) + time.perf_counter() - entered[n])))
    totals, parts = [], []
    try:
        call()
        for _ in range(repeats):
            spent.clear()
            start = time.perf_counter()
            call()
            totals.append(time.perf_counter() - start)
            parts.append(dict(spent))
    finally:
        for h in handles:
            h.remove()
    names = list(parts[0])
    return statistics.median(totals), {n: statistics.median(p.get(n, 0.0) for p in parts)
                                       for n in names}


def print_profile(lengths: Sequence[int], cfg: Any, sides: dict[str, tuple[torch.nn.Module, str]],
                  release: torch.nn.Module) -> None:
    print("\nwhere one inference's time goes (ms; median of 3; rest = padding, decoding, NMS)")
    for length in lengths:
        (video,) = full_length_videos(cfg, 1, length, seed=length)
        calls = {name: (m, pytal_detect(m, [video], amp)) for name, (m, amp) in sides.items()}
        calls["public"] = (release, public_detect(release, video))
        print(f"  one video of {length} steps")
        for name, (m, call) in calls.items():
            total, parts = module_times(m, call)
            shown = ", ".join(f"{n} {1e3 * t:.0f}" for n, t in parts.items() if t >= 5e-4)
            print(f"    {name:<24} {1e3 * total:6.0f}: {shown}, rest "
                  f"{1e3 * (total - sum(parts.values())):.0f}")


# ------------------------------------------------------------------------------ main

def run(args: argparse.Namespace, load_release: Any, make_meta_arch: Any, root: str) -> None:
    public_model = {"input_dim": args.input_dim, "input_noise": 0.0, "droppath": 0.0}
    overrides = {"dataset.input_dim": args.input_dim, "model.input_noise": 0.0,
                 "model.droppath": 0.0}
    _, cfg, release, model = build_pair(load_release, make_meta_arch, PUBLIC_CONFIG, PACKAGED,
                                        public_model=public_model, overrides=overrides,
                                        seed=args.seed, weight_noise=WEIGHT_NOISE)
    _, _, _, short = build_pair(load_release, make_meta_arch, PUBLIC_CONFIG, PACKAGED,
                                public_model=public_model, seed=args.seed,
                                weight_noise=WEIGHT_NOISE,
                                overrides={**overrides, "model.inference_padding": "stride"})
    tests, trains = thumos_videos(root, cfg, test=args.videos, train=2 * args.train_steps,
                                  seed=args.seed)
    if args.train_length:
        trains = full_length_videos(cfg, 2 * args.train_steps, args.train_length, args.seed)
    print(f"{environment()}\npublic {PUBLIC_CONFIG} vs pytal {PACKAGED} (variant release), "
          f"{args.input_dim}-d inputs, same weights (seed {args.seed})")
    print(f"test videos: {len(tests)}, lengths {[v['feats'].shape[1] for v in tests]} steps; "
          f"max_seq_len {cfg.dataset.max_seq_len}")

    for m in (release, model, short):
        m.eval()
    sides = {"pytal": (model, "none"), "pytal short form": (short, "none"),
             "pytal bf16": (model, "bf16"), "pytal short form bf16": (short, "bf16")}
    rounds = [{**{name: pytal_detect(m, [v], amp) for name, (m, amp) in sides.items()},
               "public": public_detect(release, v)} for v in tests]
    times, first = timed_rounds(rounds)
    print("\ninference per video (detections of one video per call)")
    for name in times:
        print(summary(name, times[name], first[name], times["public"] if name != "public" else None))
    for name, (pytal_model, amp) in sides.items():
        pairs = [(public_detect(release, v)(), pytal_detect(pytal_model, [v], amp)()[0])
                 for v in tests]
        wanted = sum(match_detections(ref, got, TOP, ATOL).checked for ref, got in pairs)
        counts = [f"{sum(match_detections(ref, got, TOP, tol).matched for ref, got in pairs)}/"
                  f"{wanted} within {tol}" for tol in ((ATOL,) if amp == "none" else (ATOL, BF16_ATOL))]
        print(f"  outputs, {name}: of the public code's best {TOP} detections per video, "
              f"{', '.join(counts)} (same label, score and boundaries)"
              + ("" if name == "pytal" else "; not meant to match exactly"))
    if args.profile:
        print_profile(args.profile, cfg, sides, release)
    if args.batch > 1:
        groups = [tests[i:i + args.batch] for i in range(0, len(tests), args.batch)]
        batch_rounds = [{"pytal batched": pytal_detect(model, g),
                         "pytal one by one": _each([pytal_detect(model, [v]) for v in g]),
                         "public": _each([public_detect(release, v) for v in g])} for g in groups]
        btimes, bfirst = timed_rounds(batch_rounds)
        sizes = [len(g) for g in groups]
        print(f"\ninference in batches of {args.batch} (time per video = batch time / videos)")
        for name in btimes:
            per_video = [t / n for t, n in zip(btimes[name], sizes)]
            ref = [t / n for t, n in zip(btimes["public"], sizes)]
            print(summary(name, per_video, bfirst[name] / sizes[0], ref if name != "public" else None))

    release.train()
    model.train()
    batches = [trains[i:i + 2] for i in range(0, len(trains) - 1, 2)]
    print(f"\ntraining step (batch 2; video lengths {[[v['feats'].shape[1] for v in b] for b in batches]}, "
          f"padded to {cfg.dataset.max_seq_len})")
    ref_loss = float(public_loss(release, batches[0])().detach())
    got_loss = float(pytal_loss(model, batches[0])().detach())
    p_opt, r_opt = optimizer_of(model), optimizer_of(release)
    train_rounds = [{"pytal": train_step(pytal_loss(model, b), list(model.parameters()), p_opt),
                     "public": train_step(public_loss(release, b), list(release.parameters()), r_opt)}
                    for b in batches]
    ttimes, tfirst = timed_rounds(train_rounds)
    for name in ttimes:
        print(summary(name, ttimes[name], tfirst[name], ttimes["public"] if name != "public" else None))
    print(f"  outputs: first loss public {ref_loss:.6g}, pytal {got_loss:.6g} (relative difference "
          f"{abs(ref_loss - got_loss) / max(abs(ref_loss), 1e-12):.1e})")


def _lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated lengths >= 1, got {text!r}")
    return values


def _each(calls: Sequence[Callable[[], object]]) -> Callable[[], list]:
    return lambda: [c() for c in calls]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", metavar="PATH",
                        help="checkout of the public CLTDR-GMG code (libs/utils/nms_1d_cpu built)")
    parser.add_argument("--videos", type=int, default=8, help="test videos (%(default)s)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (%(default)s)")
    parser.add_argument("--train-length", type=int, default=None, metavar="T",
                        help="training videos of exactly T steps instead of THUMOS-layout ones")
    parser.add_argument("--input-dim", type=int, default=256, help="feature channels (%(default)s)")
    parser.add_argument("--batch", type=int, default=1, help="also time pytal on batches of K videos")
    parser.add_argument("--root", default=None, help="synthetic data folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (%(default)s)")
    parser.add_argument("--profile", type=_lengths, default=None, metavar="T1,T2,...",
                        help="also print where one inference's time goes on videos of these lengths")
    args = parser.parse_args(argv)
    if args.videos < 1 or args.train_steps < 1 or args.batch < 1:
        parser.error("--videos, --train-steps and --batch must be >= 1")
    if not args.release:
        print("public CLTDR-GMG code: missing (pass --release PATH, a checkout of "
              "github.com/LiQiang0307/CLTDR-GMG with libs/utils/nms_1d_cpu built); skipped")
        return 0
    try:
        load_release, make_meta_arch = import_release(args.release)
    except (ImportError, FileNotFoundError) as error:
        print(f"public CLTDR-GMG code: cannot load {args.release} ({error}); skipped")
        return 0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    print(f"load average before: {load_average()}")
    if args.root:
        run(args, load_release, make_meta_arch, args.root)
    else:
        with tempfile.TemporaryDirectory(prefix="pytal_peers_cltdr_") as root:
            run(args, load_release, make_meta_arch, root)
    print(f"\nload average after: {load_average()}; {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

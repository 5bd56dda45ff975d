"""End-to-end benchmark: a detector's training step and inference per video with every pytal
op on the extension vs every op on its pure-PyTorch reference, in one run (``pytal bench``,
or ``python -m benchmarks.end_to_end`` from a source checkout).

It lives in the package (not in ``benchmarks/``, which ``pip install`` does not install) so
that ``pytal bench`` works wherever pytal is installed; ``benchmarks/end_to_end.py`` is a thin
entry point to :func:`main`.

What is measured, on synthetic inputs at THUMOS14 shapes (random features, so no data set
is needed; the model has its random initial weights):

* training step: forward + loss + backward + gradient clipping + AdamW step on a batch of
  ``train.batch_size`` videos of ``dataset.max_seq_len`` feature steps (2 x 2304 for
  ``cltdr_gmg_thumos``) with 8 random ground-truth segments each;
* inference per video: ``model.detect`` (heads, candidate selection, Trident decoding,
  soft-NMS, seconds) on one video at a time, for each length in ``infer_lengths`` (default
  the quartiles of the THUMOS14 test videos' lengths), averaged over the videos.

The two backends run on two copies of the same model (same initial weights, one optimiser
each); the backend is forced with :func:`pytal.ops.force_backend`. One untimed pass per
backend first checks them (same loss; same detection counts and top scores) and counts the
pytal operators dispatched (so a run shows which kernels really ran); then warm-up calls,
then ``repeats`` timed calls alternating the backends' order, reported as medians.
"""
from __future__ import annotations

import argparse
import collections
import copy
import datetime
import statistics
import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from pytal.bench_harness import environment, load_average, time_interleaved
from pytal.bench_options import THUMOS14_TEST_LENGTHS, add_arguments
from pytal.data.batch import Batch
from pytal.ops import force_backend, has_kernel

__all__ = ["THUMOS14_TEST_LENGTHS", "OpCounter", "environment", "format_report", "main",
           "run_end_to_end"]

BACKENDS = ("extension", "reference")
#: Ops the detectors need; the extension must have kernels of these for the device.
REQUIRED_OPS = ("gmg", "trident_decode", "soft_nms")
#: Largest relative difference of the training losses for the backends to "match" (fp32).
LOSS_RTOL = 1e-4
#: Largest absolute difference of the top detection scores for the backends to "match".
SCORE_ATOL = 1e-4
TOP_SCORES = 5
SEGMENTS_PER_VIDEO = 8
FPS = 30.0


class OpCounter(TorchDispatchMode):
    """Counts the ``pytal::*`` operators dispatched inside the ``with`` block (forward and
    backward kernels of the extension; the references dispatch none). ``counts``: op name ->
    calls. It sees every aten call too, so keep it out of timed code."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "pytal":
            self.counts[func.name().split("::", 1)[1]] += 1
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------------------------- inputs

def training_batch(cfg: Any, *, length: int, device: torch.device, seed: int) -> Batch:
    """A synthetic training :class:`~pytal.data.Batch`: ``feats`` (B, C_in, T) standard
    normal, ``masks`` (B, 1, T) all True, ``segments`` B tensors (8, 2) in feature steps
    (lengths 8 to 128, inside [0, T]), ``labels`` B tensors (8,) int64; B =
    ``train.batch_size``, C_in = ``dataset.input_dim``, T = ``length``."""
    gen = torch.Generator().manual_seed(seed)
    batch, c_in = cfg.train.batch_size, cfg.dataset.input_dim
    classes = cfg.dataset.num_classes
    segments, labels = [], []
    for _ in range(batch):
        span = torch.randint(8, 129, (SEGMENTS_PER_VIDEO,), generator=gen).float().clamp(max=length)
        start = torch.rand(SEGMENTS_PER_VIDEO, generator=gen) * (length - span)
        segments.append(torch.stack([start, start + span], 1).to(device))
        labels.append(torch.randint(0, classes, (SEGMENTS_PER_VIDEO,), generator=gen).to(device))
    feats = torch.randn(batch, c_in, length, generator=gen).to(device)
    masks = torch.ones(batch, 1, length, dtype=torch.bool, device=device)
    return Batch(feats, masks, segments, labels)


def inference_video(cfg: Any, *, length: int, device: torch.device, seed: int) -> Batch:
    """One synthetic video for ``model.predict``, a :class:`~pytal.data.Batch`: ``feats``
    (1, C_in, T) standard normal, ``masks`` (1, 1, T) all True and ``metadata`` (30 fps, the
    config's feature stride and frames per feature, the matching duration in seconds)."""
    gen = torch.Generator().manual_seed(seed)
    data = cfg.dataset
    stride, frames = float(data.feat_stride or 1), float(data.num_frames or 1)
    meta = {"video_id": f"synthetic_{length}", "fps": FPS, "feat_stride": stride,
            "feat_num_frames": frames, "duration": (length * stride + frames) / FPS}
    feats = torch.randn(1, data.input_dim, length, generator=gen).to(device)
    masks = torch.ones(1, 1, length, dtype=torch.bool, device=device)
    return Batch(feats, masks, metadata=[meta])


# ----------------------------------------------------------------------------- the work

def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch,
                  clip_grad_l2norm: float) -> torch.Tensor:
    """One step as the engine's Trainer takes it (forward -> loss -> backward -> clip ->
    AdamW step, in float32: the engine's ``MixedPrecision`` with ``train.amp: none``);
    returns the loss (scalar, detached)."""
    from pytal.engine.amp import MixedPrecision

    precision = MixedPrecision("none", batch.feats.device)
    loss = model(batch)["loss"]
    optimizer.zero_grad(set_to_none=True)
    precision.backward(loss)
    precision.step(optimizer, model.parameters(), clip_grad_l2norm)
    return loss.detach()


def detect_videos(model: nn.Module, videos: Sequence[Batch]) -> list[dict[str, Any]]:
    """``model.predict`` on each video in turn (batch of one); one detection dict per video."""
    return [model.predict(v)[0] for v in videos]


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> tuple[Any, Optional[float]]:
    """``(fn(), peak MiB)``: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during
    the call above what was allocated before it; None on the CPU (not measured)."""
    if device.type != "cuda":
        return fn(), None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    return out, (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def on_backend(backend: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` wrapped to run with every pytal op forced to ``backend``."""
    def call():
        with force_backend(backend):
            return fn()
    return call


# ------------------------------------------------------------------------------- checks

def checked_pass(backend: str, fn: Callable[[], Any], device: torch.device, seed: int
                 ) -> tuple[Any, dict[str, int], Optional[float]]:
    """One untimed call of ``fn`` on ``backend`` with torch's generator seeded (the model's
    input noise and drop-path draw the same numbers for both backends); returns its result,
    the pytal ops it dispatched and its peak memory (MiB, CUDA only)."""
    torch.manual_seed(seed)
    with OpCounter() as counter:
        out, peak = peak_memory_mib(on_backend(backend, fn), device)
    return out, dict(sorted(counter.counts.items())), peak


def summarise_detections(detections: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Per video: the number of detections and the ``TOP_SCORES`` highest scores."""
    return {"count": [int(d["scores"].numel()) for d in detections],
            "top_scores": [[round(float(s), 6) for s in d["scores"][:TOP_SCORES].cpu()]
                           for d in detections]}


def compare_losses(ext: float, ref: float) -> dict[str, Any]:
    """Relative difference of the two backends' losses and whether it is within LOSS_RTOL."""
    diff = abs(ext - ref) / max(abs(ref), 1e-12)
    return {"loss_rel_diff": diff, "loss_rtol": LOSS_RTOL, "match": diff <= LOSS_RTOL}


def compare_detections(ext: Mapping[str, list], ref: Mapping[str, list]) -> dict[str, Any]:
    """Same detection count per video, and top scores within SCORE_ATOL."""
    diffs = [abs(a - b) for ea, ra in zip(ext["top_scores"], ref["top_scores"])
             for a, b in zip(ea, ra)]
    score_diff = max(diffs, default=0.0)
    same_count = ext["count"] == ref["count"]
    return {"same_count": same_count, "top_score_max_abs_diff": score_diff,
            "score_atol": SCORE_ATOL, "match": same_count and score_diff <= SCORE_ATOL}


# ------------------------------------------------------------------------------ the runs

def _validate(device: torch.device, repeats: int, warmup: int, train_length: Optional[int],
              infer_lengths: Sequence[int], threads: Optional[int]) -> None:
    """Fail early, naming the argument."""
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but no GPU is usable here")
    for name, value, least in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if train_length is not None and (not isinstance(train_length, int) or train_length < 1):
        raise ValueError(f"train_length must be a positive integer, got {train_length!r}")
    if not infer_lengths or any(not isinstance(t, int) or t < 1 for t in infer_lengths):
        raise ValueError(f"infer_lengths must be positive integers, got {list(infer_lengths)!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    missing = [op for op in REQUIRED_OPS if not has_kernel(op, device.type)]
    if missing:
        raise RuntimeError(f"the extension pytal._C has no {device.type} kernel of {missing}: "
                           "build it first (pip install --no-build-isolation -e .)")


def _models(cfg: Any, device: torch.device, seed: int
            ) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer], float]:
    """One model per backend, identical initial weights, each with the config's optimiser (the
    engine's ``train.optimizer``, parameter groups, ``train.lr`` / ``train.weight_decay``); also
    the clip norm."""
    from pytal.engine import build_optimizer
    from pytal.models import build_model

    settings = cfg.train
    torch.manual_seed(seed)
    first = build_model(cfg).to(device)
    models = {BACKENDS[0]: first, BACKENDS[1]: copy.deepcopy(first)}
    optims = {b: build_optimizer(m, settings) for b, m in models.items()}
    return models, optims, settings.clip_grad_l2norm


def _timing(samples: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    """Median and all samples, in seconds, each divided by ``scale``."""
    values = [s / scale for s in samples]
    return {"median_s": statistics.median(values), "samples_s": values}


def bench_training(cfg, models, optims, clip, *, length, device, repeats, warmup, seed
                   ) -> dict[str, Any]:
    """Training step on each backend: a checked pass (loss, ops, peak memory), then timings."""
    batch = training_batch(cfg, length=length, device=device, seed=seed)
    for m in models.values():
        m.train()
    steps = {b: (lambda b=b: training_step(models[b], optims[b], batch, clip)) for b in BACKENDS}
    out: dict[str, Any] = {"batch": len(batch), "length": length}
    for b in BACKENDS:
        loss, ops, peak = checked_pass(b, steps[b], device, seed)
        out[b] = {"loss": float(loss), "ops": ops, "peak_memory_mib": peak}
    timings = time_interleaved({b: on_backend(b, steps[b]) for b in BACKENDS},
                               repeats=repeats, warmup=warmup, device=device)
    for b in BACKENDS:
        out[b].update(_timing(timings[b].samples))
    out["speedup"] = out["reference"]["median_s"] / out["extension"]["median_s"]
    out["check"] = compare_losses(out["extension"]["loss"], out["reference"]["loss"])
    return out


def bench_inference(cfg, models, *, lengths, device, repeats, warmup, seed) -> dict[str, Any]:
    """Inference per video on each backend: a checked pass (detections, ops, peak memory),
    then timings of all videos, divided by their number. The reference model first takes
    the extension model's weights (training steps let them drift apart: AdamW turns
    rounding-level gradient differences into lr-sized updates)."""
    videos = [inference_video(cfg, length=t, device=device, seed=seed + i)
              for i, t in enumerate(lengths)]
    models["reference"].load_state_dict(models["extension"].state_dict())
    for m in models.values():
        m.eval()
    runs = {b: (lambda b=b: detect_videos(models[b], videos)) for b in BACKENDS}
    out: dict[str, Any] = {"lengths": list(lengths)}
    for b in BACKENDS:
        dets, ops, peak = checked_pass(b, runs[b], device, seed)
        out[b] = {**summarise_detections(dets), "ops": ops, "peak_memory_mib": peak}
    timings = time_interleaved({b: on_backend(b, runs[b]) for b in BACKENDS},
                               repeats=repeats, warmup=warmup, device=device)
    for b in BACKENDS:
        out[b].update(_timing(timings[b].samples, scale=len(videos)))
    out["speedup"] = out["reference"]["median_s"] / out["extension"]["median_s"]
    out["check"] = compare_detections(out["extension"], out["reference"])
    return out


def run_end_to_end(config: str = "cltdr_gmg_thumos", *, device: Optional[str] = None,
                   repeats: int = 5, warmup: int = 1, threads: Optional[int] = None,
                   train_length: Optional[int] = None,
                   infer_lengths: Sequence[int] = THUMOS14_TEST_LENGTHS,
                   overrides: Sequence[str] = (), seed: int = 0) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its results.

    Args:
        config: packaged config name or YAML path (``cltdr_gmg_thumos``: I3D 2048-d input,
            the real THUMOS14 model; ``cltdr_gmg_small``: 512-d input, narrow layers).
        device: ``"cpu"`` or ``"cuda"`` (default: cuda when a GPU is usable).
        repeats: timed calls per backend (medians are reported); warmup: untimed calls first.
        threads: ``torch.set_num_threads`` for the run (default: leave as is).
        train_length: feature steps of the training videos (default ``dataset.max_seq_len``).
        infer_lengths: feature steps of the inference videos, one video each.
        overrides: ``"a.b=value"`` config overrides. seed: inputs and initial weights.

    Returns a JSON-ready dict: ``config``, ``device``, ``threads``, ``environment``,
    ``load_average`` (before and after), ``date``, ``repeats``, ``warmup``, ``train`` and
    ``inference``, each with ``extension`` / ``reference`` entries (``median_s``: seconds per
    step, or per video for inference; ``samples_s``; ``ops``: pytal ops dispatched in the
    checked pass; ``peak_memory_mib``: CUDA only, else None; ``loss`` or ``count`` /
    ``top_scores``), ``speedup`` (reference / extension median) and ``check`` (``match``).
    """
    from pytal.config import load_config

    dev = torch.device(device if device is not None else
                       ("cuda" if torch.cuda.is_available() else "cpu"))
    infer_lengths = list(infer_lengths)
    _validate(dev, repeats, warmup, train_length, infer_lengths, threads)
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = load_config(config, overrides)
    length = train_length if train_length is not None else cfg.dataset.max_seq_len
    result: dict[str, Any] = {
        "config": str(config), "overrides": list(overrides), "device": str(dev),
        "threads": torch.get_num_threads(), "environment": environment(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average_before": load_average(), "repeats": repeats, "warmup": warmup,
        "input_dim": cfg.dataset.input_dim}
    models, optims, clip = _models(cfg, dev, seed)
    timing = dict(device=dev, repeats=repeats, warmup=warmup, seed=seed)
    result["train"] = bench_training(cfg, models, optims, clip, length=length, **timing)
    result["inference"] = bench_inference(cfg, models, lengths=infer_lengths, **timing)
    result["load_average_after"] = load_average()
    return result


# ------------------------------------------------------------------------------- report

def _mib(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def format_report(result: Mapping[str, Any]) -> str:
    """The result of :func:`run_end_to_end` as a text table plus the checks."""
    tr, inf = result["train"], result["inference"]
    lines = [f"end-to-end {result['config']} on {result['device']} ({result['environment']}); "
             f"load average {result['load_average_before']} -> {result['load_average_after']}",
             f"medians of {result['repeats']} interleaved repeats after {result['warmup']} "
             "warm-up; speed-up = reference / extension",
             f"  {'':<44}{'extension':>12}{'reference':>12}{'speed-up':>10}"]
    rows = ((f"training step (B={tr['batch']}, T={tr['length']}, C_in={result['input_dim']})",
             tr), (f"inference per video (T={','.join(map(str, inf['lengths']))})", inf))
    for name, part in rows:
        lines.append(f"  {name:<44}{part['extension']['median_s'] * 1e3:>9.1f} ms"
                     f"{part['reference']['median_s'] * 1e3:>9.1f} ms{part['speedup']:>9.2f}x")
    for name, part in (("training", tr), ("inference", inf)):
        if part["extension"]["peak_memory_mib"] is not None:
            lines.append(f"  peak memory, {name:<30}{_mib(part['extension']['peak_memory_mib']):>12}"
                         f"{_mib(part['reference']['peak_memory_mib']):>12}")
    c = tr["check"]
    lines.append(f"check, loss: extension {tr['extension']['loss']:.6f}, reference "
                 f"{tr['reference']['loss']:.6f}, relative difference {c['loss_rel_diff']:.1e} "
                 f"(tolerance {c['loss_rtol']:.0e}): {'OK' if c['match'] else 'MISMATCH'}")
    c = inf["check"]
    lines.append(f"check, detections per video: extension {inf['extension']['count']}, reference "
                 f"{inf['reference']['count']}; top-{TOP_SCORES} scores max |diff| "
                 f"{c['top_score_max_abs_diff']:.1e} (tolerance {c['score_atol']:.0e}): "
                 f"{'OK' if c['match'] else 'MISMATCH'}")
    for name, part in (("training", tr), ("inference", inf)):
        lines.append(f"pytal ops dispatched, {name}: extension {part['extension']['ops'] or 'none'}; "
                     f"reference {part['reference']['ops'] or 'none'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line

def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed :func:`add_arguments` options, print the report, write
    ``--json``; returns 0, or 1 when a backend check failed."""
    from pytal.io.jsonio import write_json

    result = run_end_to_end(args.config, device=args.device, repeats=args.repeats,
                            warmup=args.warmup, threads=args.threads,
                            train_length=args.train_length, infer_lengths=args.infer_lengths,
                            overrides=args.override)
    print(format_report(result))
    if args.json:
        write_json(args.json, result, indent=2)
    return 0 if result["train"]["check"]["match"] and result["inference"]["check"]["match"] else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m benchmarks.end_to_end [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.end_to_end",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run_from_args(parser.parse_args(argv))
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

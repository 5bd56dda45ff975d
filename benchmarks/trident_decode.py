"""Forward+backward time and peak memory of ``pytal.ops.trident_decode``: extension vs the
pure-PyTorch reference (the materialising decoding TriDet and CLTDR-GMG run), at TriDet's
shapes.

    python -m benchmarks.trident_decode                 # THUMOS and EPIC-noun, CPU (+ CUDA)
    python -m benchmarks.trident_decode --shapes thumos --device cpu --repeat 5
    python -m benchmarks.trident_decode --custom 2,20,4536,17
    python -m benchmarks.trident_decode --forms index --positives 300 1000 2000 --repeat 7
    python -m benchmarks.trident_decode --forms train-step --device cpu --repeat 15

Shapes: THUMOS14 B=2, the 6 FPN levels from T=2304 concatenated (T=4536), Cb=20, K=17;
EPIC-Kitchens noun: the same with Cb=300. Peak memory is measured in a fresh subprocess per
(backend, shape, device) after a warm-up call (:func:`benchmarks.common.peak_memory_mib`: on
CUDA the allocator's peak, on the CPU the resident set's high-water mark, inputs excluded).
Times are the median of ``--repeat`` interleaved runs after a warm-up.

The index form with gradients (``--forms index``) is timed as a detector's training loss uses
it: one call per FPN level (B=4, Cb=20, levels of T = 1024, 512, 256, 128, 64, K=17) on N
positive (batch, class, position) triples spread over the levels in proportion to their
length, forward+backward of all levels, for three paths: the dense kernel gathered at the
triples (what an index form without a backward of its own costs), the index kernels, and the
reference index form. Repeats are interleaved across the paths and the best is reported. ``--forms train-step`` times a
whole CLTDR-GMG training step (``cltdr_gmg_small``) with the dense+gather path and the
index kernels.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

import pytal
from benchmarks.common import environment, peak_memory_mib, time_interleaved
from pytal.ops import trident_decode

LEVELS_THUMOS = sum(2304 >> i for i in range(6))  # 2304 + 1152 + ... + 72 = 4536
SHAPES = {  # name -> (B, Cb, T, K)
    "thumos": (2, 20, LEVELS_THUMOS, 17),
    "epic-noun": (2, 300, LEVELS_THUMOS, 17),
}
BACKENDS = ("reference", "extension")


def make_inputs(shape, device, dtype=torch.float32):
    b, c, t, k = shape
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(b, c, t, generator=gen), torch.randn(b, c, t, generator=gen),
               torch.randn(b, t, 2, k, generator=gen)]
    return [x.to(device=device, dtype=dtype).requires_grad_() for x in tensors]


def step(inputs, backend):
    """One forward+backward; returns nothing (grads accumulate in the inputs)."""
    out = trident_decode(*inputs, backend=backend)
    out.backward(torch.ones_like(out))


def step_case(shape, device, backend):
    """Factory for :func:`benchmarks.common.peak_memory_mib`, and what is timed: one
    forward+backward from fresh gradients."""
    inputs = make_inputs(tuple(shape), device)

    def run():
        for x in inputs:
            x.grad = None
        step(inputs, backend)
    return run


def time_steps(shape, device, repeat):
    """Median seconds of one forward+backward per backend, the backends interleaved."""
    fns = {backend: step_case(shape, device, backend) for backend in BACKENDS}
    return {k: t.median for k, t in time_interleaved(fns, device=device, repeats=repeat).items()}


def peak_memory(shape, device, backend):
    """MiB above the inputs of one forward+backward, in a fresh process after a warm-up call."""
    return peak_memory_mib("benchmarks.trident_decode:step_case",
                           dict(shape=list(shape), device=device, backend=backend), device=device)


def fmt_mib(n):
    return f"{n:9.1f} MiB"


INDEX_LEVELS = (1024, 512, 256, 128, 64)
INDEX_SHAPE = (4, 20, 17)  # (B, Cb, K) of the index-form benchmark


def make_index_problem(positives, device):
    """Per level: its inputs (requiring grad) and the (batch, cls, pos) triples on it."""
    b, c, k = INDEX_SHAPE
    gen = torch.Generator().manual_seed(1)
    total = sum(INDEX_LEVELS)
    problem = []
    for t in INDEX_LEVELS:
        n = max(1, round(positives * t / total))
        idx = tuple(torch.randint(size, (n,), generator=gen).to(device) for size in (b, c, t))
        problem.append((make_inputs((b, c, t, k), device), idx))
    return problem


def dense_then_gather(s, e, o, idx):
    dense, _ = torch.ops.pytal.trident_decode(s, e, o)
    return dense[idx[0], idx[2], idx[1]]


INDEX_PATHS = {  # name -> decoding of one level with gradients
    "dense+gather": dense_then_gather,
    "index kernel": lambda s, e, o, idx: trident_decode(s, e, o, index=idx,
                                                        backend="extension"),
    "reference": lambda s, e, o, idx: trident_decode(s, e, o, index=idx,
                                                     backend="reference"),
}


def index_step(problem, path):
    """Forward+backward of every level's index-form decoding on ``path``."""
    for inputs, idx in problem:
        for x in inputs:
            x.grad = None
        out = INDEX_PATHS[path](*inputs, idx)
        out.backward(torch.ones_like(out))


def time_index_paths(problem, device, repeat):
    """Best seconds of index_step per path, repeats interleaved across paths."""
    fns = {path: (lambda path=path: index_step(problem, path)) for path in INDEX_PATHS}
    return {k: t.best for k, t in time_interleaved(fns, device=device, repeats=repeat).items()}


def run_index(positives, devices, repeat):
    b, c, k = INDEX_SHAPE
    print(f"trident_decode index form, forward+backward over levels T={list(INDEX_LEVELS)}, "
          f"B={b}, Cb={c}, K={k}, float32; best of {repeat}, {torch.get_num_threads()} "
          f"CPU threads; load average {os.getloadavg()[0]:.2f}")
    names = list(INDEX_PATHS)
    print(f"{'N positives':>11} {'device':6} " + " ".join(f"{n:>13}" for n in names)
          + f" {'vs dense':>9} {'vs ref':>8}")
    for n in positives:
        for device in devices:
            best = time_index_paths(make_index_problem(n, device), device, repeat)
            ours = best["index kernel"]
            print(f"{n:>11} {device:6} " + " ".join(f"{best[p] * 1e3:11.2f}ms" for p in names)
                  + f" {best['dense+gather'] / ours:8.1f}x {best['reference'] / ours:7.1f}x",
                  flush=True)


def dense_gather_path(start_logits, end_logits, offset_logits, index=None, **kwargs):
    """pytal.ops.trident_decode with the index form under autograd replaced by the dense op,
    gathered at the triples."""
    inputs = (start_logits, end_logits, offset_logits)
    if index is not None and torch.is_grad_enabled() and any(x.requires_grad for x in inputs):
        return dense_then_gather(start_logits, end_logits, offset_logits, index)
    return trident_decode(start_logits, end_logits, offset_logits, index=index, **kwargs)


def run_training_step(device, repeat):
    """CLTDR-GMG training step (cltdr_gmg_small) with the dense+gather path vs the index
    kernels: one model per path from the same weights, steps interleaved, median and best."""
    import copy

    import pytal.models.cltdr_gmg.model as cltdr
    from pytal import bench
    from pytal.config import load_config
    from pytal.engine import param_groups
    from pytal.models import build_model

    cfg = load_config("cltdr_gmg_small")
    settings = cfg.train
    torch.manual_seed(0)
    first = build_model(cfg).to(device)
    models = {"dense+gather": first, "index kernel": copy.deepcopy(first)}
    optims = {k: torch.optim.AdamW(param_groups(m, settings.weight_decay), lr=settings.lr)
              for k, m in models.items()}
    decoders = {"dense+gather": dense_gather_path, "index kernel": trident_decode}
    batch = bench.training_batch(cfg, length=cfg.dataset.max_seq_len,
                                 device=torch.device(device), seed=0)

    def step(name):
        cltdr.trident_decode = decoders[name]  # the name the model calls
        return bench.training_step(models[name], optims[name], batch,
                                   settings.clip_grad_l2norm)

    try:
        timings = time_interleaved({k: (lambda k=k: step(k)) for k in models},
                                   device=device, repeats=repeat)
    finally:
        cltdr.trident_decode = trident_decode
    print(f"cltdr_gmg_small training step on {device} (B={batch['feats'].shape[0]}, "
          f"T={batch['feats'].shape[-1]}), {repeat} interleaved repeats, "
          f"{torch.get_num_threads()} CPU threads; load average {os.getloadavg()[0]:.2f}")
    for name, t in timings.items():
        print(f"  {name:13} median {t.median * 1e3:8.1f} ms   best {t.best * 1e3:8.1f} ms")


def run(shapes, devices, repeat):
    print(f"pytal.ops.trident_decode forward+backward, float32; {environment()}")
    print(f"{'shape (B,Cb,T,K)':24} {'device':6} {'reference':>11} {'extension':>11} "
          f"{'speed-up':>8}   {'ref peak':>13} {'ext peak':>13} {'mem ratio':>9}")
    for name, shape in shapes.items():
        for device in devices:
            t = time_steps(shape, device, repeat)
            m = {bk: peak_memory(shape, device, bk) for bk in BACKENDS}
            label = f"{name} {shape}"
            ratio = m["reference"] / max(m["extension"], 1e-3)
            print(f"{label:24} {device:6} {t['reference'] * 1e3:9.1f}ms "
                  f"{t['extension'] * 1e3:9.1f}ms {t['reference'] / t['extension']:7.2f}x   "
                  f"{fmt_mib(m['reference'])} {fmt_mib(m['extension'])} {ratio:8.1f}x",
                  flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--custom", help="B,Cb,T,K instead of --shapes")
    parser.add_argument("--device", nargs="+", choices=("cpu", "cuda"), default=None,
                        help="default: cpu, and cuda when a GPU is usable")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forms", nargs="+", choices=("dense", "index", "train-step"),
                        default=["dense", "index"],
                        help="dense: the dense op at --shapes; index: the index form with "
                             "gradients at training shapes; train-step: a CLTDR-GMG "
                             "training step with the dense+gather path and the index kernels")
    parser.add_argument("--positives", nargs="+", type=int, default=[300, 1000, 2000],
                        help="N positive triples of the index form (all levels together)")
    args = parser.parse_args(argv)
    if not pytal.ops.extension_loaded():
        sys.exit(f"pytal._C is not built: {pytal.ops.backend_info()['load_error']}")
    shapes = ({"custom": tuple(int(x) for x in args.custom.split(","))} if args.custom
              else {k: SHAPES[k] for k in args.shapes})
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "dense" in args.forms:
        run(shapes, devices, args.repeat)
    if "index" in args.forms:
        run_index(args.positives, devices, args.repeat)
    if "train-step" in args.forms:
        for device in devices:
            run_training_step(device, args.repeat)


if __name__ == "__main__":
    main()

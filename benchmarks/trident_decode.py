"""Forward+backward time and peak memory of ``pytal.ops.trident_decode``: extension vs the
pure-PyTorch reference (the materialising decoding TriDet and CLTDR-GMG run), at TriDet's
shapes.

    python -m benchmarks.trident_decode                 # THUMOS and EPIC-noun, CPU (+ CUDA)
    python -m benchmarks.trident_decode --shapes thumos --device cpu --repeat 5
    python -m benchmarks.trident_decode --custom 2,20,4536,17

Shapes: THUMOS14 B=2, the 6 FPN levels from T=2304 concatenated (T=4536), Cb=20, K=17;
EPIC-Kitchens noun: the same with Cb=300. Peak memory is measured in a fresh subprocess per
(backend, shape, device) so that one run's allocations cannot hide another's: on CUDA with
``torch.cuda.max_memory_allocated``, on the CPU as the peak of torch's CPU allocator from the
profiler's memory events (allocations by tensors only, inputs excluded). Times are the median of ``--repeat`` runs after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

import pytal
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


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_step(shape, device, backend, repeat):
    """Median seconds of one forward+backward."""
    inputs = make_inputs(shape, device)
    step(inputs, backend)  # warm-up
    times = []
    for _ in range(repeat):
        for x in inputs:
            x.grad = None
        sync(device)
        start = time.perf_counter()
        step(inputs, backend)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_here(shape, device, backend):
    """Peak bytes allocated by one forward+backward beyond the inputs (this process)."""
    inputs = make_inputs(shape, device)
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(inputs, backend)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    return cpu_peak_bytes(lambda: step(inputs, backend))


def cpu_peak_bytes(fn):
    """Peak of the bytes held by torch's CPU allocator while ``fn`` runs, counting only
    allocations made inside it (from the profiler's memory events: their "Total Allocated"
    is the running total since the profiler started)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return max([0] + totals)


def peak_memory(shape, device, backend):
    """peak_memory_here in a fresh interpreter (isolated allocator and resident set)."""
    cmd = [sys.executable, "-m", "benchmarks.trident_decode", "--_peak",
           json.dumps({"shape": shape, "device": device, "backend": backend})]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(res.stdout.strip().splitlines()[-1])


def fmt_mib(n):
    return f"{n / 2**20:9.1f} MiB"


def run(shapes, devices, repeat):
    print(f"pytal.ops.trident_decode forward+backward, float32; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'shape (B,Cb,T,K)':24} {'device':6} {'reference':>11} {'extension':>11} "
          f"{'speed-up':>8}   {'ref peak':>13} {'ext peak':>13} {'mem ratio':>9}")
    for name, shape in shapes.items():
        for device in devices:
            t = {bk: time_step(shape, device, bk, repeat) for bk in BACKENDS}
            m = {bk: peak_memory(shape, device, bk) for bk in BACKENDS}
            label = f"{name} {shape}"
            ratio = m["reference"] / max(m["extension"], 1)
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
    parser.add_argument("--_peak", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._peak:
        job = json.loads(args._peak)
        print(peak_memory_here(tuple(job["shape"]), job["device"], job["backend"]))
        return
    if not pytal.ops.extension_loaded():
        sys.exit(f"pytal._C is not built: {pytal.ops.backend_info()['load_error']}")
    shapes = ({"custom": tuple(int(x) for x in args.custom.split(","))} if args.custom
              else {k: SHAPES[k] for k in args.shapes})
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    run(shapes, devices, args.repeat)


if __name__ == "__main__":
    main()

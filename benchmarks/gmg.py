"""Benchmark of pytal.ops.gmg: extension vs reference, forward and forward+backward, at the
shapes of CLTDR-GMG (THUMOS14: B=2, C=512, T=2304 and each pyramid level below; ActivityNet:
C=256, T=192 and below). CPU always, CUDA when a GPU is present (there also the achieved
memory bandwidth of the fused kernels against the device's peak).

    python -m benchmarks.gmg                      # default shapes, a few minutes on 2 cores
    python -m benchmarks.gmg --levels 2 --gating release --devices cpu
    python -m benchmarks.gmg --no-memory          # skip the CPU peak-memory subprocesses
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import torch

import pytal
from benchmarks.common import environment, peak_memory_mib, time_interleaved
from pytal.ops import gmg

THUMOS = dict(B=2, C=512, T=2304)
ANET = dict(B=2, C=256, T=192)
# Peak DRAM bandwidth (GB/s) of GPUs we may meet, when the driver does not tell us.
PEAK_GBPS = {"H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100": 3350.0, "H200": 4800.0,
             "A100-SXM4-80GB": 2039.0, "A100": 1555.0}


def make_inputs(B, C, T, k=3, device="cpu", dtype=torch.float32, requires_grad=False):
    gen = torch.Generator().manual_seed(0)
    shapes = [(B, C, T), (2, C), (2, C), (2, C), (2, C), (C, k), (C,), (C,), (C,)]
    scales = [1.0, 0.8, 0.3, 0.8, 0.05, 0.5, 0.2, 0.8, 0.2]
    out = []
    for i, (shape, s) in enumerate(zip(shapes, scales)):
        t = (torch.randn(shape, generator=gen) * s).to(device, dtype if i == 0 else torch.float32)
        out.append(t.requires_grad_(requires_grad))
    return out


def step(inputs, backend, gating, backward):
    """One forward (and backward) call."""
    if not backward:
        with torch.no_grad():
            return gmg(*inputs, gating=gating, backend=backend)
    for t in inputs:
        t.grad = None
    out = gmg(*inputs, gating=gating, backend=backend)
    out.backward(torch.ones_like(out))
    return out


def shapes(levels: int) -> list[tuple[str, dict]]:
    out = []
    for name, base in (("thumos", THUMOS), ("anet", ANET)):
        for level in range(levels):
            T = base["T"] // (2 ** level)
            if T >= 1:
                out.append((f"{name} L{level}", dict(base, T=T)))
    return out


def step_case(shape: dict, backend: str, gating: str, k: int = 3,
              device: str = "cpu") -> Callable[[], object]:
    """Factory for :func:`benchmarks.common.peak_memory_mib`: one forward+backward."""
    inputs = make_inputs(**shape, k=k, device=device, requires_grad=True)
    return lambda: step(inputs, backend, gating, True)


def peak_memory(shape: dict, backend: str, gating: str, k: int, device: str) -> float:
    """MiB above the inputs of one forward+backward, in a fresh process after a warm-up call."""
    return peak_memory_mib("benchmarks.gmg:step_case",
                           dict(shape=shape, backend=backend, gating=gating, k=k, device=device),
                           device=device)


def run_device(device: str, levels: int, gating: str, k: int, memory: bool) -> None:
    cuda = device == "cuda"
    print(f"\n== {device} ({torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'}), "
          f"gating={gating}, k={k}, float32; best-of-N ms per call ==")
    header = (f"{'shape':<12}{'B,C,T':>16}  {'fwd ref':>9}{'fwd ext':>9}{'x':>6}  "
              f"{'f+b ref':>9}{'f+b ext':>9}{'x':>6}")
    if cuda:
        header += f"  {'peak MiB ref':>12}{'ext':>8}"
    print(header)
    for name, shape in shapes(levels):
        inputs = make_inputs(**shape, k=k, device=device, requires_grad=True)
        calls = {(backend, backward): (lambda b=backend, bw=backward: step(inputs, b, gating, bw))
                 for backward in (False, True) for backend in ("reference", "extension")}
        timings = time_interleaved(calls, device=device, repeats=8, min_seconds=2.0)
        row = {key: 1e3 * t.best for key, t in timings.items()}
        for backend in ("reference", "extension"):
            if cuda:
                row[backend, "mem"] = peak_memory(shape, backend, gating, k, device)
        line = (f"{name:<12}{'%d,%d,%d' % (shape['B'], shape['C'], shape['T']):>16}  "
                f"{row['reference', False]:9.2f}{row['extension', False]:9.2f}"
                f"{row['reference', False] / row['extension', False]:6.2f}  "
                f"{row['reference', True]:9.2f}{row['extension', True]:9.2f}"
                f"{row['reference', True] / row['extension', True]:6.2f}")
        if cuda:
            line += f"  {row['reference', 'mem']:12.1f}{row['extension', 'mem']:8.1f}"
        print(line, flush=True)
    if memory and not cuda:
        print("\nCPU peak memory of one forward+backward (MiB above the inputs, fresh process):")
        for name, shape in (("thumos L0", THUMOS), ("anet L0", ANET)):
            ref = peak_memory(shape, "reference", gating, k, device)
            ext = peak_memory(shape, "extension", gating, k, device)
            ratio = f"{ext / ref:5.2f}" if ref > 0 else "  n/a"
            print(f"  {name:<10} reference {ref:8.1f}  extension {ext:8.1f}  ratio {ratio}")
    if cuda:
        report_bandwidth(gating, k)


def report_bandwidth(gating: str, k: int) -> None:
    """Achieved DRAM bandwidth of each fused kernel at the THUMOS shape (profiler times,
    bytes = the kernel's compulsory reads and writes)."""
    from torch.profiler import ProfilerActivity, profile

    B, C, T = THUMOS["B"], THUMOS["C"], THUMOS["T"]
    F = T // 2 + 1
    rows = B * C
    inputs = make_inputs(B, C, T, k=k, device="cuda", requires_grad=True)
    step(inputs, "extension", gating, True)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            step(inputs, "extension", gating, True)
        torch.cuda.synchronize()
    bytes_moved = {  # float32 u: 4-byte storage, 8-byte complex per frequency
        "filter_forward_kernel": rows * F * 8 * 2,
        "filter_backward_kernel": rows * F * 8 * 3,
        "gated_forward_kernel": rows * T * 4 * 3,
        "gated_backward_kernel": rows * T * 4 * 5,
    }
    name = torch.cuda.get_device_name()
    peak = next((v for key, v in PEAK_GBPS.items() if key in name), None)
    print(f"\nfused kernels at B={B}, C={C}, T={T} (peak {peak or '?'} GB/s for {name}):")
    for kernel, nbytes in bytes_moved.items():
        events = [e for e in prof.key_averages() if kernel in e.key]
        if not events:
            continue
        us = events[0].device_time_total / events[0].count
        gbps = nbytes / (us * 1e-6) / 1e9
        frac = f"{100 * gbps / peak:5.1f}% of peak" if peak else ""
        print(f"  {kernel:<24}{us:9.1f} us  {gbps:8.1f} GB/s  {frac}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=6, help="pyramid levels per dataset")
    parser.add_argument("--gating", default="paper", choices=("paper", "release"))
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    info = pytal.ops.backend_info()
    print(json.dumps({k: info[k] for k in ("extension", "cpu", "cuda", "cuda_arch", "torch")}))
    print(environment())
    if not info["ops"].get("gmg"):
        sys.exit("pytal._C has no gmg kernel: build the extension first")
    for device in args.devices.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            print("\n(no CUDA device: CUDA section skipped)")
            continue
        run_device(device, args.levels, args.gating, args.kernel_size, not args.no_memory)


if __name__ == "__main__":
    main()

"""Benchmark of boundary_pool: the extension against the pure-PyTorch reference and against a
one-scan-per-output baseline (AFSD's algorithm, ``scan_baseline`` below), at
AFSD's THUMOS shapes (C=512, T=K=256) and ActivityNet shapes (T=K=768, intervals up to T).

    python -m benchmarks.boundary_pool [--batch 1,8] [--device cpu,cuda] [--shapes thumos,anet]

Prints median milliseconds of the forward pass (all three, interleaved) and of forward + backward
(reference and extension), with ratios; on CUDA also the peak memory of forward + backward.
The reference gathers a (B, C, K, window) tensor in chunks: it is skipped (shown as "-") above
--reference-limit gathered elements, which keeps the default run to a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
from typing import Callable, Optional

import torch

import pytal
from benchmarks.common import environment, peak_memory_mib, time_interleaved
from pytal.ops.reference import boundary_pool as reference

# name -> (T, K, longest boundary region as a fraction of T)
SHAPES = {"thumos": (256, 256, 0.25), "anet": (768, 768, 1.0)}


def make_inputs(batch: int, channels: int, length: int, num: int, max_fraction: float,
                device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (B, C, T) and (B, K, 4) boundary regions: each a random position and a length
    uniform in [1, max_fraction * T], so the mean region covers max_fraction * T / 2."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, length, generator=g)
    longest = max(1, int(max_fraction * length))
    lo = torch.randint(0, length, (batch, num, 2), generator=g).float()
    span = torch.randint(0, longest, (batch, num, 2), generator=g).float()
    seg = torch.stack([lo[..., 0], lo[..., 0] + span[..., 0],
                       lo[..., 1], lo[..., 1] + span[..., 1]], dim=-1)
    return x.to(device), seg.to(device)


def scan_baseline(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """boundary_pool by one scan per output (AFSD's algorithm), in PyTorch: every output walks
    its interval one position at a time, all outputs in step, so a call costs (longest
    interval) steps of O(B * C * K) each.

    features (B, C, T); segments (B, K, 4) valid intervals in feature steps. Returns (B, C, K).
    """
    batch, channels, length = features.shape
    bounds = segments.double().trunc().clamp(0, length - 1).long()      # (B, K, 4)
    start_half = (torch.arange(channels, device=features.device) < channels // 2)[None, :, None]
    lo = torch.where(start_half, bounds[:, None, :, 0], bounds[:, None, :, 2])  # (B, C, K)
    hi = torch.where(start_half, bounds[:, None, :, 1], bounds[:, None, :, 3])
    best = features.gather(2, lo)
    for step in range(1, int((hi - lo).max()) + 1 if lo.numel() else 0):
        pos = lo + step
        value = features.gather(2, pos.clamp(max=length - 1))
        better = (pos <= hi) & ((value > best) | (value.isnan() & ~best.isnan()))
        best = torch.where(better, value, best)
    return best


def forward_backward(backend: str, x: torch.Tensor, seg: torch.Tensor) -> Callable[[], None]:
    def run():
        xg = x.detach().requires_grad_()
        pytal.ops.boundary_pool(xg, seg, backend=backend).sum().backward()
    return run


def forward_backward_case(backend: str, shape: str, batch: int, channels: int,
                          device: str) -> Callable[[], None]:
    """Factory for :func:`benchmarks.common.peak_memory_mib`: forward + backward of one case."""
    length, num, fraction = SHAPES[shape]
    return forward_backward(backend, *make_inputs(batch, channels, length, num, fraction, device))


def peak_mib(backend: str, shape: str, batch: int, args, device: str) -> Optional[float]:
    if device != "cuda":
        return None
    return peak_memory_mib("benchmarks.boundary_pool:forward_backward_case",
                           dict(backend=backend, shape=shape, batch=batch,
                                channels=args.channels, device=device), device=device)


def bench_case(device: str, shape: str, batch: int, args) -> dict:
    length, num, fraction = SHAPES[shape]
    x, seg = make_inputs(batch, args.channels, length, num, fraction, device)
    window = int((seg[..., 1::2] - seg[..., 0::2]).max().clamp(max=length - 1)) + 1
    run_reference = batch * args.channels * num * window <= args.reference_limit
    repeats = {"ext": args.repeats, "base": args.repeats, "ext_fb": args.repeats,
               "ref": min(args.repeats, 3), "ref_fb": min(args.repeats, 3)}
    row = {"device": device, "shape": shape, "B": batch, "C": args.channels, "T": length,
           "K": num}
    forward = {"ext": lambda: pytal.ops.boundary_pool(x, seg, backend="extension"),
               "base": lambda: scan_baseline(x, seg)}
    both = {"ext_fb": forward_backward("extension", x, seg)}
    if run_reference:
        forward["ref"] = lambda: reference.boundary_pool(x, seg)
        both["ref_fb"] = forward_backward("reference", x, seg)
    for fns in (forward, both):
        timings = time_interleaved(fns, device=device, repeats=repeats, budget_s=args.budget)
        row.update({name: t.median * 1e3 for name, t in timings.items()})
    row["ext_mem"] = peak_mib("extension", shape, batch, args, device)
    row["ref"], row["ref_fb"] = row.get("ref"), row.get("ref_fb")
    row["ref_mem"] = peak_mib("reference", shape, batch, args, device) if run_reference else None
    return row


# (header, width, cell of a result row)
COLUMNS = [
    ("dev", 4, lambda r: r["device"]),
    ("shape", 6, lambda r: r["shape"]),
    ("B", 2, lambda r: r["B"]),
    ("C", 4, lambda r: r["C"]),
    ("T", 4, lambda r: r["T"]),
    ("K", 4, lambda r: r["K"]),
    ("fwd ref ms", 10, lambda r: _ms(r["ref"])),
    ("fwd base ms", 11, lambda r: _ms(r["base"])),
    ("fwd ext ms", 10, lambda r: _ms(r["ext"])),
    ("ref/ext", 7, lambda r: _ratio(r["ref"], r["ext"])),
    ("base/ext", 8, lambda r: _ratio(r["base"], r["ext"])),
    ("f+b ref ms", 10, lambda r: _ms(r["ref_fb"])),
    ("f+b ext ms", 10, lambda r: _ms(r["ext_fb"])),
    ("ref/ext", 7, lambda r: _ratio(r["ref_fb"], r["ext_fb"])),
    ("ref MiB", 8, lambda r: _ms(r["ref_mem"], 1)),
    ("ext MiB", 8, lambda r: _ms(r["ext_mem"], 1)),
]


def _ms(v: Optional[float], digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _ratio(a: Optional[float], b: Optional[float]) -> str:
    return "-" if a is None or not b else f"{a / b:.1f}x"


def print_header() -> None:
    print("  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS))


def print_row(r: dict) -> None:
    print("  ".join(f"{cell(r)!s:>{width}}" for _, width, cell in COLUMNS), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--shapes", default="thumos,anet", help=f"any of {list(SHAPES)}")
    parser.add_argument("--device", default=None,
                        help="comma-separated devices (default: cpu, and cuda when available)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget", type=float, default=5.0,
                        help="seconds per measurement before it stops repeating")
    parser.add_argument("--reference-limit", type=float, default=4e8,
                        help="skip the reference above this many gathered elements")
    args = parser.parse_args(argv)
    devices = (args.device.split(",") if args.device
               else ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    info = pytal.ops.backend_info()
    print(f"{environment()}; extension cpu={info['cpu']} cuda={info['cuda']}")
    print_header()
    for device in devices:
        for shape in args.shapes.split(","):
            for batch in (int(b) for b in args.batch.split(",")):
                print_row(bench_case(device, shape, batch, args))


if __name__ == "__main__":
    main()

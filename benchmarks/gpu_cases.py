"""CUDA edge cases that must each run in a fresh process: shared-memory boundary sizes (whether
a launch fails there can depend on earlier launches in the same process) and the small cases
that compute-sanitizer checks. Each case compares the extension with the op's reference.

    python -m benchmarks.gpu_cases --list
    python -m benchmarks.gpu_cases CASE [CASE ...]      # exit status 0 when all pass

Used by ``python -m benchmarks.gpu_check`` and by tests/test_cuda_ops.py.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

import torch

import pytal

# Float tolerances of CUDA against the reference (docs/cuda.md).
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5),
       torch.float16: dict(rtol=1e-2, atol=1e-2), torch.bfloat16: dict(rtol=5e-2, atol=5e-2)}


def _pool_segments(batch: int, num: int, length: int, width: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo = torch.randint(0, length, (batch, num, width // 2), generator=g)
    span = torch.randint(0, length, (batch, num, width // 2), generator=g)
    hi = (lo + span).clamp(max=length - 1)
    return torch.stack([lo, hi], dim=-1).flatten(-2).float().cuda()


def _check_pool(op: str, dtype: torch.dtype, length: int, mode: str = "max") -> None:
    """Forward and backward of boundary_pool / segment_pool on one row length."""
    width = 4 if op == "boundary_pool" else 2
    g = torch.Generator().manual_seed(length)
    x = torch.randn(2, 4, length, generator=g).to("cuda", dtype)
    seg = _pool_segments(2, 16, length, width, seed=length)
    grad = torch.randn(2, 4, 16, generator=g).to("cuda", dtype)
    results = []
    for backend in ("extension", "reference"):
        xb = x.detach().requires_grad_()
        if op == "boundary_pool":
            out = pytal.ops.boundary_pool(xb, seg, backend=backend)
        else:
            out = pytal.ops.segment_pool(xb, seg, mode=mode, backend=backend)
        (out.float() * grad.float()).sum().backward()
        results.append((out.float(), xb.grad.float()))
    torch.cuda.synchronize()
    tol = TOL[dtype]
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **tol)


def _check_soft_nms(dtype: torch.dtype, sizes: list[int]) -> None:
    """One call whose groups have the given sizes (mixing the shared-memory and workspace
    paths when they straddle the shared capacity)."""
    g = torch.Generator().manual_seed(sum(sizes))
    n = sum(sizes)
    start = torch.rand(n, generator=g, dtype=torch.float64) * 100
    seg = torch.stack([start, start + torch.rand(n, generator=g, dtype=torch.float64) * 10], 1)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    groups = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    perm = torch.randperm(n, generator=g)
    seg, scores, groups = seg[perm].to(dtype), scores[perm].to(dtype), groups[perm]
    kwargs = dict(method="gaussian", sigma=0.5, min_score=1e-3)
    keep, new = pytal.ops.soft_nms(seg.cuda(), scores.cuda(), groups.cuda(), backend="extension",
                                   **kwargs)
    ref_keep, ref_new = pytal.ops.soft_nms(seg, scores, groups, backend="reference", **kwargs)
    # Near-ties may swap between backends in float32 (docs/cuda.md): compare the kept sets and
    # the scores of each kept candidate.
    assert keep.shape == ref_keep.shape, (keep.shape, ref_keep.shape)
    order, ref_order = keep.cpu().argsort(), ref_keep.argsort()
    assert torch.equal(keep.cpu()[order], ref_keep[ref_order])
    torch.testing.assert_close(new.cpu()[order], ref_new[ref_order], **TOL[dtype])


def _check_small_everything() -> None:
    """Every op forward and backward at small sizes (for compute-sanitizer)."""
    _check_pool("boundary_pool", torch.float32, 40)
    _check_pool("segment_pool", torch.float32, 40, mode="mean")
    _check_soft_nms(torch.float32, [5, 30, 1])
    g = torch.Generator().manual_seed(0)
    s, e = (torch.randn(2, 3, 20, generator=g).cuda().requires_grad_() for _ in range(2))
    o = torch.randn(2, 20, 2, 5, generator=g).cuda().requires_grad_()
    pytal.ops.trident_decode(s, e, o).sum().backward()
    idx = tuple(torch.tensor(v).cuda() for v in ([0, 1, 1], [2, 0, 2], [0, 19, 7]))
    pytal.ops.trident_decode(s, e, o, idx).sum().backward()
    u = torch.randn(2, 4, 33, generator=g).cuda().requires_grad_()
    shapes = [(2, 4)] * 4 + [(4, 3), (4,), (4,), (4,)]
    params = [torch.randn(sh, generator=g).cuda().requires_grad_() for sh in shapes]
    pytal.ops.gmg(u, *params).sum().backward()
    torch.cuda.synchronize()


CASES: dict[str, Callable[[], None]] = {
    "boundary_pool_half_T2048": lambda: _check_pool("boundary_pool", torch.float16, 2048),
    "boundary_pool_bf16_T2048": lambda: _check_pool("boundary_pool", torch.bfloat16, 2048),
    **{f"boundary_pool_f32_T{t}": (lambda t=t: _check_pool("boundary_pool", torch.float32, t))
       for t in (2043, 2045, 2047, 2048)},
    **{f"segment_pool_mean_f32_T{t}": (lambda t=t: _check_pool("segment_pool", torch.float32, t,
                                                                mode="mean"))
       for t in (4085, 4090, 4095, 4096)},
    **{f"soft_nms_f32_group{n}": (lambda n=n: _check_soft_nms(torch.float32, [n]))
       for n in (4091, 4096)},
    **{f"soft_nms_f64_group{n}": (lambda n=n: _check_soft_nms(torch.float64, [n]))
       for n in (2044, 2048)},
    # groups below and above the shared-memory capacity of an H100/H200 (about 19,000 float32
    # candidates) in one launch
    "soft_nms_mixed_paths": lambda: _check_soft_nms(torch.float32, [50, 25000, 300, 1]),
    "small_everything": _check_small_everything,
}
# Cases run under compute-sanitizer (small: memcheck and racecheck slow kernels down ~100x).
SANITIZER_CASES = ("small_everything",)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case names (see --list)")
    parser.add_argument("--list", action="store_true", help="print the case names")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(CASES))
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown or not args.cases:
        parser.error(f"unknown cases {unknown}; --list names them" if unknown else
                     "name at least one case")
    if not torch.cuda.is_available():
        print("no CUDA device: the cases need one")
        return 2
    failed = 0
    for name in args.cases:
        try:
            CASES[name]()
            print(f"PASS {name}")
        except Exception as exc:  # report every case, then fail
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

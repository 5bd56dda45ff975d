"""CUDA behaviour of every op beyond the per-op value tests: streams, non-contiguous, sliced and
misaligned inputs, empty tensors, shared-memory boundary sizes (each in a fresh process),
Soft-NMS groups on both the shared-memory and the workspace path, gmg's slab path and half
precision backward, more FFT shapes than the plan cache holds, two threads, run-twice
determinism and a second GPU. Everything is compared with the reference (pytal.ops.reference
through ``backend="reference"``), with the tolerances of docs/cuda.md."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import torch

import pytal
from benchmarks.gpu_cases import CASES, TOL

pytestmark = [pytest.mark.cuda, pytest.mark.extension]
F32 = TOL[torch.float32]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _pool_inputs(batch=2, channels=8, length=50, num=12, seed=0):
    g = _gen(seed)
    x = torch.randn(batch, channels, length, generator=g)
    lo = torch.randint(0, length, (batch, num, 2), generator=g)
    hi = (lo + torch.randint(0, length, (batch, num, 2), generator=g)).clamp(max=length - 1)
    seg = torch.stack([lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]], -1).float()
    return x.cuda(), seg.cuda()


def _gmg_inputs(batch=2, channels=4, length=33, seed=0, dtype=torch.float32):
    g = _gen(seed)
    u = torch.randn(batch, channels, length, generator=g).to("cuda", dtype)
    shapes = [(2, channels)] * 4 + [(channels, 3), (channels,), (channels,), (channels,)]
    return u, [torch.randn(s, generator=g).cuda() for s in shapes]


def _trident_inputs(batch=2, classes=3, length=20, bins=5, seed=0):
    g = _gen(seed)
    s, e = (torch.randn(batch, classes, length, generator=g).cuda() for _ in range(2))
    return s, e, torch.randn(batch, length, 2, bins, generator=g).cuda()


def _soft_nms_inputs(n=300, groups=7, seed=0):
    g = _gen(seed)
    start = torch.rand(n, generator=g) * 100
    seg = torch.stack([start, start + torch.rand(n, generator=g) * 10], 1)
    return seg.cuda(), torch.rand(n, generator=g).cuda(), torch.randint(0, groups, (n,),
                                                                      generator=g).cuda()


def _all_ops(x_pool, seg, u, params, tri, nms):
    """One call of every op: a tuple of outputs."""
    out = [pytal.ops.boundary_pool(x_pool, seg),
           pytal.ops.segment_pool(x_pool, seg[..., :2], mode="mean"),
           pytal.ops.gmg(u, *params), pytal.ops.trident_decode(*tri)]
    out += list(pytal.ops.soft_nms(*nms))
    return out


def _reference_ops(x_pool, seg, u, params, tri, nms):
    with pytal.ops.force_backend("reference"):
        return _all_ops(x_pool, seg, u, params, tri, nms)


def _assert_outputs_close(got, want):
    for a, b in zip(got, want):
        if a.dtype == torch.long:
            assert torch.equal(a.cpu(), b.cpu())
        else:
            torch.testing.assert_close(a, b, **F32)


def _inputs():
    x, seg = _pool_inputs()
    u, params = _gmg_inputs()
    return x, seg, u, params, _trident_inputs(), _soft_nms_inputs()


def test_every_op_on_a_side_stream():
    inputs = _inputs()
    want = _reference_ops(*inputs)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = _all_ops(*inputs)
    torch.cuda.current_stream().wait_stream(stream)
    _assert_outputs_close(got, want)


def test_non_contiguous_sliced_and_misaligned_inputs():
    x, seg = _pool_inputs(length=51)
    # transposed storage, a slice with an odd element offset, a strided slice
    x_t = x.transpose(1, 2).contiguous().transpose(1, 2)
    x_odd = torch.cat([x.new_zeros(1), x.flatten()])[1:].view_as(x)
    assert x_odd.data_ptr() % 8 != 0
    for features in (x_t, x_odd, x[:, ::2]):
        seg_k = seg[:, ::2]
        for op in (pytal.ops.boundary_pool, pytal.ops.segment_pool):
            segs = seg_k if op is pytal.ops.boundary_pool else seg_k[..., :2]
            torch.testing.assert_close(op(features, segs),
                                       op(features, segs, backend="reference"), **F32)
    u, params = _gmg_inputs(length=40)
    u_odd = torch.cat([u.new_zeros(1), u.flatten()])[1:].view_as(u)    # misaligned for cuFFT
    for uu in (u_odd, u.transpose(1, 2).contiguous().transpose(1, 2), u[:, :, 1:]):
        torch.testing.assert_close(pytal.ops.gmg(uu, *params),
                                   pytal.ops.gmg(uu, *params, backend="reference"), **F32)
    s, e, o = _trident_inputs()
    torch.testing.assert_close(pytal.ops.trident_decode(s[:, :, 2:], e[:, :, 2:], o[:, 2:]),
                               pytal.ops.trident_decode(s[:, :, 2:], e[:, :, 2:], o[:, 2:],
                                                        backend="reference"), **F32)
    seg_n, sc, gr = _soft_nms_inputs()
    keep, new = pytal.ops.soft_nms(seg_n[::2], sc[::2], gr[::2])
    ref_keep, ref_new = pytal.ops.soft_nms(seg_n[::2].cpu(), sc[::2].cpu(), gr[::2].cpu(),
                                           backend="reference")
    assert torch.equal(keep.cpu(), ref_keep)
    torch.testing.assert_close(new.cpu(), ref_new, **F32)


def test_empty_tensors():
    x = torch.zeros(2, 4, 10, device="cuda")
    assert pytal.ops.boundary_pool(x, torch.zeros(2, 0, 4, device="cuda")).shape == (2, 4, 0)
    assert pytal.ops.segment_pool(x[:, :0], torch.zeros(2, 3, 2, device="cuda")).shape == \
        (2, 0, 3)
    keep, new = pytal.ops.soft_nms(torch.zeros(0, 2, device="cuda"),
                                   torch.zeros(0, device="cuda"))
    assert keep.shape == (0,) and new.shape == (0,) and keep.is_cuda
    u, params = _gmg_inputs(batch=0)
    assert pytal.ops.gmg(u, *params).shape == u.shape
    s, e, o = _trident_inputs(batch=0)
    assert pytal.ops.trident_decode(s, e, o).shape == (0, 20, 3, 2)
    s, e, o = _trident_inputs()
    empty = torch.zeros(0, dtype=torch.long, device="cuda")
    assert pytal.ops.trident_decode(s, e, o, (empty, empty, empty)).shape == (0, 2)


@pytest.mark.parametrize("case", [c for c in CASES if c != "small_everything"])
def test_edge_case_in_a_fresh_process(case):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_cases", case],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("length", [9000, 40000])      # past the shared-memory row kernels
@pytest.mark.parametrize("op, mode", [("boundary_pool", "max"), ("segment_pool", "max"),
                                      ("segment_pool", "mean")])
def test_long_rows_backward(op, mode, length):
    x, seg = _pool_inputs(batch=2, channels=4, length=length, num=30, seed=length)
    x = x.double()
    seg = seg if op == "boundary_pool" else seg[..., :2]
    seg[0, :3] = seg[0, 3:6]                               # repeated intervals share argmaxes
    grads = []
    for backend in ("extension", "reference"):
        xg = x.detach().requires_grad_()
        if op == "boundary_pool":
            out = pytal.ops.boundary_pool(xg, seg, backend=backend)
        else:
            out = pytal.ops.segment_pool(xg, seg, mode=mode, backend=backend)
        (out * torch.linspace(-1, 1, out.numel(), device="cuda").view_as(out)).sum().backward()
        grads.append(xg.grad)
    torch.testing.assert_close(grads[0], grads[1], **TOL[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gmg_half_precision_backward(dtype):
    u, params = _gmg_inputs(dtype=dtype)
    grads = []
    for backend in ("extension", "reference"):
        ug = u.detach().requires_grad_()
        ps = [p.detach().requires_grad_() for p in params]
        pytal.ops.gmg(ug, *ps, backend=backend).float().sum().backward()
        grads.append([ug.grad.float()] + [p.grad for p in ps])
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, **TOL[dtype])


def test_gmg_slab_path_beyond_65535_rows():
    u, params = _gmg_inputs(batch=3, channels=22000, length=16)     # B * C = 66,000
    assert u.shape[0] * u.shape[1] > 65535
    ug = u.detach().requires_grad_()
    out = pytal.ops.gmg(ug, *params)
    out.sum().backward()
    ur = u.detach().requires_grad_()
    ref = pytal.ops.gmg(ur, *params, backend="reference")
    ref.sum().backward()
    torch.testing.assert_close(out, ref, **F32)
    torch.testing.assert_close(ug.grad, ur.grad, **F32)


def test_more_fft_shapes_than_the_plan_cache_holds():
    # 80 lengths x 2 directions > 64 plans: the cache is emptied and refilled on the way
    for length in range(2, 82):
        u, params = _gmg_inputs(batch=1 + length % 3, channels=2, length=length, seed=length)
        torch.testing.assert_close(pytal.ops.gmg(u, *params),
                                   pytal.ops.gmg(u, *params, backend="reference"), **F32)


def test_two_threads_at_once():
    inputs = _inputs()
    want = _reference_ops(*inputs)
    errors, results = [], [None, None]

    def work(slot):
        try:
            for _ in range(5):
                results[slot] = _all_ops(*inputs)
            torch.cuda.synchronize()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got in results:
        _assert_outputs_close(got, want)


def test_run_twice_is_bitwise_identical():
    inputs = _inputs()
    x, seg = inputs[0], inputs[1]

    def run():
        outs = _all_ops(*inputs)
        xg = x.detach().requires_grad_()
        pytal.ops.boundary_pool(xg, seg).sum().backward()
        s, e, o = (t.detach().requires_grad_() for t in inputs[4])
        idx = tuple(torch.tensor(v, device="cuda") for v in ([0, 1, 1, 1], [2, 0, 2, 2],
                                                            [0, 19, 7, 7]))
        pytal.ops.trident_decode(s, e, o, idx).sum().backward()
        return outs + [xg.grad, s.grad, o.grad]

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second GPU")
def test_second_gpu():
    with torch.cuda.device(1):
        inputs = [t.to("cuda:1") if isinstance(t, torch.Tensor) else t for t in _inputs()[:2]]
    x, seg = inputs
    got = pytal.ops.boundary_pool(x, seg)
    assert got.device == torch.device("cuda:1")
    torch.testing.assert_close(got, pytal.ops.boundary_pool(x, seg, backend="reference"), **F32)
    u, params = _gmg_inputs()
    u1, p1 = u.to("cuda:1"), [p.to("cuda:1") for p in params]
    # the current device stays cuda:0: the op must follow its inputs
    torch.testing.assert_close(pytal.ops.gmg(u1, *p1),
                               pytal.ops.gmg(u1, *p1, backend="reference"), **F32)
    seg_n, sc, gr = (t.to("cuda:1") for t in _soft_nms_inputs())
    keep, _ = pytal.ops.soft_nms(seg_n, sc, gr)
    assert keep.device == torch.device("cuda:1")
    assert torch.equal(keep.cpu(), pytal.ops.soft_nms(seg_n, sc, gr, backend="reference")[0].cpu())


def test_invalid_values_fail_in_a_fresh_process():
    """On CUDA out-of-range indices and inverted intervals fail as device-side assertions
    (asynchronous: no host synchronisation on valid input); Soft-NMS raises ValueError."""
    nms = ("import torch, pytal\n"
           "try:\n"
           "    pytal.ops.soft_nms(torch.tensor([[0., 1], [2, 3]], device='cuda'),\n"
           "                       torch.tensor([0.5, float('nan')], device='cuda'))\n"
           "except ValueError as e:\n"
           "    print('ValueError', e)\n")
    done = subprocess.run([sys.executable, "-c", nms], capture_output=True, text=True,
                          timeout=300)
    assert "ValueError" in done.stdout and "scores must be finite" in done.stdout
    pool = ("import torch, pytal\n"
            "x = torch.zeros(1, 2, 5, device='cuda')\n"
            "pytal.ops.boundary_pool(x, torch.tensor([[[3., 1, 0, 1]]], device='cuda'))\n"
            "torch.cuda.synchronize()\n")
    done = subprocess.run([sys.executable, "-c", pool], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "assert" in (done.stdout + done.stderr).lower()

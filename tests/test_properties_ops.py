"""Property tests of every op: on random shapes (empty and length 1 included), dtypes and values
with ties, duplicates and extremes, the compiled kernel gives what the reference gives (the
specification), forward and backward."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from pytal.ops import boundary_pool, gmg, segment_pool, soft_nms, trident_decode

pytestmark = pytest.mark.extension

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Tolerances of the extension against the reference (both compute in float32 for half inputs
# and round once; they differ by the order of float operations).
TOL = {torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2),
       torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


@st.composite
def tensors(draw, shape: tuple[int, ...], dtype: torch.dtype, *, low: float = -8.0,
            high: float = 8.0, extremes: tuple[float, ...] = ()) -> torch.Tensor:
    """A tensor of ``shape`` whose values come from a small pool (so ties and duplicates are
    common), a wide range and ``extremes``."""
    pool = draw(st.lists(st.floats(low, high, allow_nan=False), min_size=1, max_size=4))
    values = st.one_of(st.sampled_from(pool), st.floats(low, high, allow_nan=False),
                       st.sampled_from((0.0, -0.0) + tuple(extremes)))
    numel = 1
    for size in shape:
        numel *= size
    flat = draw(st.lists(values, min_size=numel, max_size=numel))
    return torch.tensor(flat, dtype=torch.float64).reshape(shape).to(dtype)


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, scale: float = 1.0) -> None:
    tol = TOL[dtype]
    torch.testing.assert_close(got.double(), want.double(), rtol=tol["rtol"],
                               atol=tol["atol"] * max(1.0, scale), equal_nan=True)


def _identical(got: torch.Tensor, want: torch.Tensor) -> None:
    """Same dtype, shape and values, NaN where NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got.isnan(), want.isnan()), (got, want)
    assert torch.equal(got.nan_to_num(), want.nan_to_num()), (got, want)


def _both(fn, *inputs: torch.Tensor, grad: bool = False, differentiable: int = 99):
    """``fn(*inputs, backend=...)`` for both backends: (extension, reference), each
    ``(output, gradients of sum(output * weights) with respect to the first
    ``differentiable`` inputs)`` when ``grad``."""
    results = []
    for backend in ("extension", "reference"):
        leaves = [t.detach().clone().requires_grad_(grad and i < differentiable)
                  for i, t in enumerate(inputs)]
        out = fn(*leaves, backend=backend)
        grads = ()
        if grad and out.numel():
            weights = torch.linspace(-1, 2, out.numel(), dtype=torch.float64).reshape(out.shape)
            (out * weights.to(out.dtype)).sum().backward()
            grads = tuple(t.grad for t in leaves if t.requires_grad)
        results.append((out.detach(), grads))
    return results


# ---------------------------------------------------------------------------- soft_nms

@st.composite
def nms_inputs(draw):
    n = draw(st.integers(0, 12))
    dtype = draw(st.sampled_from((torch.float32, torch.float64)))
    grid = st.integers(-4, 12).map(lambda v: v / 4)                    # ties and duplicates
    starts = draw(st.lists(st.one_of(grid, st.sampled_from((-1e6, 1e6))), min_size=n, max_size=n))
    lengths = draw(st.lists(st.one_of(grid.map(abs), st.just(0.0)), min_size=n, max_size=n))
    scores = draw(st.lists(st.one_of(st.sampled_from((0.0, 1e-3, 0.5, 0.5, 1.0, 1e6)),
                                     st.floats(-1, 2, allow_nan=False)), min_size=n, max_size=n))
    groups = draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n))
    segments = torch.tensor([[s, s + l] for s, l in zip(starts, lengths)],
                            dtype=dtype).reshape(n, 2)
    kwargs = dict(method=draw(st.sampled_from(("gaussian", "linear", "hard"))),
                  iou_threshold=draw(st.sampled_from((0.0, 0.1, 0.5, 1.0))),
                  sigma=draw(st.sampled_from((1e-3, 0.5, 10.0))),
                  min_score=draw(st.sampled_from((-1.0, 0.0, 1e-3, 0.5))),
                  max_per_group=draw(st.integers(-1, 3)))
    with_groups = draw(st.booleans())
    return (segments, torch.tensor(scores, dtype=dtype),
            torch.tensor(groups, dtype=torch.int64) if with_groups else None, kwargs)


@settings(max_examples=examples(2.0))
@given(nms_inputs())
def test_soft_nms_extension_matches_reference(inputs):
    segments, scores, groups, kwargs = inputs
    got = soft_nms(segments, scores, groups, backend="extension", **kwargs)
    want = soft_nms(segments, scores, groups, backend="reference", **kwargs)
    assert torch.equal(got[0], want[0]), (got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-6 if scores.dtype == torch.float32
                               else 1e-12, atol=0)


# ---------------------------------------------------------------------- trident_decode

@st.composite
def trident_inputs(draw, huge: bool = True):
    """Logits of one dtype; with ``huge``, values up to 1e30 (1e4 in float16) among them."""
    b, c, t, k = (draw(st.integers(0, 2)), draw(st.integers(0, 3)), draw(st.integers(0, 6)),
                  draw(st.integers(1, 5)))
    dtype = draw(st.sampled_from(FLOATS))
    big = (1e4 if dtype == torch.float16 else 1e30) if huge else 8.0
    start, end = (draw(tensors((b, c, t), dtype, extremes=(big, -big))) for _ in range(2))
    offsets = draw(tensors((b, t, 2, k), dtype, extremes=(big, -big)))
    return start, end, offsets


@settings(max_examples=examples(1.0))
@given(st.tuples(trident_inputs(), st.booleans()))
def test_trident_decode_extension_matches_reference(case):
    inputs, grad = case
    dtype = inputs[0].dtype
    grad = grad and dtype != torch.bfloat16            # bf16 gradients: too coarse to compare
    (out_e, grads_e), (out_r, grads_r) = _both(trident_decode, *inputs, grad=grad)
    k = inputs[2].shape[-1]
    _close(out_e, out_r, dtype, scale=k)
    b, c, t = inputs[0].shape
    assert out_e.shape == out_r.shape == (b, t, c, 2)
    for a, b in zip(grads_e, grads_r):
        _close(a, b, dtype, scale=k * max(1, inputs[0].shape[1]))


def test_trident_decode_gradient_with_huge_tied_logits():
    # Near 1e30, max + log(sum) rounds to max: probabilities taken from a saved log-sum-exp
    # would give two tied bins probability 1 each, and twice their gradient.
    start = torch.zeros(1, 1, 2)
    offsets = torch.zeros(1, 2, 2, 4)
    offsets[0, 1, 1, 2:] = 1e30
    index = [torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([1, 0])]

    def decode_index(start, end, offsets, backend):
        return trident_decode(start, end, offsets, index, backend=backend)

    for decode in (trident_decode, decode_index):
        (_, grads_e), (_, grads_r) = _both(decode, start, start.clone(), offsets, grad=True)
        assert len(grads_e) == len(grads_r) == 3
        for a, b in zip(grads_e, grads_r):
            torch.testing.assert_close(a, b)


@settings(max_examples=examples(1.0))
@given(trident_inputs(huge=False), st.data())
def test_trident_decode_index_matches_reference(inputs, data):
    b, c, t = inputs[0].shape
    n = data.draw(st.integers(0, 6)) if b * c * t else 0
    index = [torch.tensor(data.draw(st.lists(st.integers(0, max(size - 1, 0)), min_size=n,
                                             max_size=n)), dtype=torch.int64)
             for size in (b, c, t)]                                 # repeats allowed

    def decode(start, end, offsets, backend):
        return trident_decode(start, end, offsets, index, backend=backend)

    (out_e, grads_e), (out_r, grads_r) = _both(decode, *inputs, grad=inputs[0].dtype in
                                               (torch.float32, torch.float64))
    k = inputs[2].shape[-1]
    _close(out_e, out_r, inputs[0].dtype, scale=k)
    for a, b_ in zip(grads_e, grads_r):
        _close(a, b_, inputs[0].dtype, scale=k * max(1, n))


# -------------------------------------------------------------------------------- gmg

@st.composite
def gmg_inputs(draw):
    b, c, t = draw(st.integers(0, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9))
    k = draw(st.sampled_from((1, 3, 5, 31)))
    dtype = draw(st.sampled_from(FLOATS))
    u = draw(tensors((b, c, t), dtype, low=-4, high=4))
    params = [draw(tensors(shape, torch.float32, low=-2, high=2))
              for shape in ((2, c), (2, c), (2, c), (2, c), (c, k), (c,), (c,), (c,))]
    return (u, *params), draw(st.sampled_from(("paper", "release"))), draw(
        st.sampled_from((0.0, 1e-3, 0.5)))


@settings(max_examples=examples(0.6))
@given(gmg_inputs(), st.booleans())
def test_gmg_extension_matches_reference(inputs, grad):
    tensors_, gating, lambd = inputs
    dtype = tensors_[0].dtype

    def mixer(*args, backend):
        return gmg(*args, gating=gating, lambd=lambd, backend=backend)

    grad = grad and dtype in (torch.float32, torch.float64)
    (out_e, grads_e), (out_r, grads_r) = _both(mixer, *tensors_, grad=grad)
    # Products of up to four factors of magnitude <= 10: absolute error scales with them.
    scale = float(out_r.double().abs().max()) if out_r.numel() else 1.0
    tol = {**TOL, torch.float32: dict(rtol=1e-4, atol=1e-5)}[dtype]
    torch.testing.assert_close(out_e.double(), out_r.double(), rtol=tol["rtol"],
                               atol=tol["atol"] * max(1.0, scale))
    for a, b in zip(grads_e, grads_r):
        gscale = float(b.double().abs().max()) if b.numel() else 1.0
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4,
                                   atol=1e-4 * max(1.0, gscale) * tensors_[0].shape[-1])


# -------------------------------------------------------------- boundary_pool, segment_pool

@st.composite
def pool_inputs(draw, width: int):
    b, c, t, n = (draw(st.integers(0, 2)), 2 * draw(st.integers(0, 2)), draw(st.integers(1, 9)),
                  draw(st.integers(0, 5)))
    dtype = draw(st.sampled_from(FLOATS))
    features = draw(tensors((b, c, t), dtype, extremes=(float("inf"), -float("inf"))))
    seg_dtype = draw(st.sampled_from((torch.float32, torch.float64, torch.int64, torch.int32)))
    coords = st.one_of(st.integers(-3, t + 3), st.floats(-3.9, t + 3.9, allow_nan=False),
                       st.sampled_from((-1e9, 1e9)))
    pairs = []
    for _ in range(b * n * width // 2):
        lo, hi = draw(coords), draw(coords)
        if int(lo) > int(hi):                                  # lo <= hi after truncation
            lo, hi = hi, lo
        pairs.append((lo, hi))
    segments = torch.tensor(pairs, dtype=torch.float64).reshape(b, n, width)
    if not seg_dtype.is_floating_point:
        segments = segments.trunc()
    return features, segments.to(seg_dtype)


@settings(max_examples=examples(1.0))
@given(pool_inputs(4), st.booleans())
def test_boundary_pool_extension_matches_reference(inputs, grad):
    features, segments = inputs
    (out_e, grads_e), (out_r, grads_r) = _both(boundary_pool, features, segments, grad=grad,
                                                 differentiable=1)
    _identical(out_e, out_r)
    for a, b in zip(grads_e, grads_r):
        _identical(a, b)                                       # first argmax, exactly


@settings(max_examples=examples(1.0))
@given(pool_inputs(2), st.sampled_from(("max", "mean")), st.booleans())
def test_segment_pool_extension_matches_reference(inputs, mode, grad):
    features, segments = inputs
    if mode == "mean":
        features = features.nan_to_num(posinf=8.0, neginf=-8.0)   # inf - inf: no mean

    def pool(f, s, backend):
        return segment_pool(f, s, mode=mode, backend=backend)

    (out_e, grads_e), (out_r, grads_r) = _both(pool, features, segments, grad=grad, differentiable=1)
    if mode == "max":
        _identical(out_e, out_r)
        for a, b in zip(grads_e, grads_r):
            _identical(a, b)
    else:
        _close(out_e, out_r, features.dtype, scale=8.0)
        for a, b in zip(grads_e, grads_r):
            _close(a, b, features.dtype)

"""pytal.ops.soft_nms: the reference against hand-computed cases, the extension kernels
against the reference, and argument checking."""
from __future__ import annotations

import math

import pytest
import torch

import pytal
from pytal.ops import soft_nms
from pytal.ops._backend import choose_backend

METHODS = ("gaussian", "linear", "hard")


def random_candidates(n, num_groups, *, seed, dtype=torch.float32, length=(0.5, 20.0),
                      span=100.0):
    """Tie-free random candidates: overlapping segments, continuous scores."""
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(n, generator=g, dtype=torch.float64) * span
    length = length[0] + torch.rand(n, generator=g, dtype=torch.float64) * (length[1] - length[0])
    segments = torch.stack([start, start + length], 1).to(dtype)
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype)
    groups = torch.randint(0, num_groups, (n,), generator=g)
    return segments, scores, groups


def assert_same(result, expected, dtype):
    keep, new_scores = result
    keep_ref, scores_ref = expected
    assert keep.dtype == torch.int64 and new_scores.dtype == dtype
    assert torch.equal(keep.cpu(), keep_ref.cpu())
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(new_scores.cpu(), scores_ref.cpu(), rtol=rtol, atol=0)


# ---------------------------------------------------------------- the specification itself

def test_reference_gaussian_by_hand():
    segments = torch.tensor([[0.0, 10.0], [5.0, 15.0], [30.0, 40.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.5], dtype=torch.float64)
    keep, new = soft_nms(segments, scores, sigma=0.5, backend="reference")
    iou = 5.0 / (10.0 + 1e-6 + 10.0 + 1e-6 - 5.0)
    assert keep.tolist() == [0, 1, 2]
    assert new.tolist() == pytest.approx([0.9, 0.8 * math.exp(-iou * iou / 0.5), 0.5])


def test_reference_linear_and_hard_by_hand():
    segments = torch.tensor([[0.0, 10.0], [5.0, 15.0], [9.0, 19.0]], dtype=torch.float64)
    scores = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    iou01 = 5.0 / (15.0 + 2e-6)
    iou02 = 1.0 / (19.0 + 2e-6)
    # linear: segment 1 decays (iou >= 0.3), segment 2 does not (iou < 0.3).
    keep, new = soft_nms(segments, scores, iou_threshold=0.3, method="linear",
                         backend="reference")
    assert keep.tolist() == [0, 2, 1]
    s1 = 0.8 * (1 - iou01)
    iou12 = 6.0 / (14.0 + 2e-6)
    assert new.tolist() == pytest.approx([0.9, 0.7, s1 * (1 - iou12)])
    assert iou02 < 0.3
    # hard: segment 1 is suppressed, segment 2 survives both selections.
    keep, new = soft_nms(segments, scores, iou_threshold=0.3, method="hard", backend="reference")
    assert keep.tolist() == [0, 2] and new.tolist() == pytest.approx([0.9, 0.7])


def test_reference_drops_under_min_score_and_limits_per_group():
    segments = torch.tensor([[0.0, 1.0], [0.0, 1.0], [5.0, 6.0], [7.0, 8.0]])
    scores = torch.tensor([0.5, 0.4, 0.0005, 0.3])
    keep, _ = soft_nms(segments, scores, min_score=0.01, method="hard", iou_threshold=0.5,
                       backend="reference")
    assert keep.tolist() == [0, 3]
    keep, _ = soft_nms(segments, scores, max_per_group=1, backend="reference")
    assert keep.tolist() == [0]


# ------------------------------------------------------------------ extension vs reference


@pytest.mark.extension
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_cpu_kernel_matches_reference(method, dtype, seed):
    segments, scores, groups = random_candidates(600, 7, seed=seed, dtype=dtype)
    kwargs = dict(iou_threshold=0.3, sigma=0.5, min_score=1e-3, method=method)
    expected = soft_nms(segments, scores, groups, backend="reference", **kwargs)
    assert_same(soft_nms(segments, scores, groups, backend="extension", **kwargs), expected,
                dtype)


@pytest.mark.extension
@pytest.mark.parametrize("max_per_group", [0, 1, 5])
def test_cpu_kernel_max_per_group(max_per_group):
    segments, scores, groups = random_candidates(300, 4, seed=3)
    expected = soft_nms(segments, scores, groups, max_per_group=max_per_group,
                        backend="reference")
    result = soft_nms(segments, scores, groups, max_per_group=max_per_group, backend="extension")
    assert_same(result, expected, torch.float32)
    assert len(result[0]) <= 4 * max_per_group


@pytest.mark.extension
def test_default_backend_is_extension_on_cpu():
    assert choose_backend("soft_nms", torch.device("cpu"), None) == "extension"


@pytest.mark.extension
@pytest.mark.parametrize("backend", ["reference", "extension"])
def test_empty_input(backend):
    keep, new = soft_nms(torch.empty(0, 2), torch.empty(0), torch.empty(0, dtype=torch.long),
                         backend=backend)
    assert keep.shape == (0,) and keep.dtype == torch.int64
    assert new.shape == (0,) and new.dtype == torch.float32


@pytest.mark.extension
@pytest.mark.parametrize("backend", ["reference", "extension"])
def test_one_segment(backend):
    keep, new = soft_nms(torch.tensor([[1.0, 2.0]]), torch.tensor([0.7]), backend=backend)
    assert keep.tolist() == [0] and new.tolist() == pytest.approx([0.7])


@pytest.mark.extension
@pytest.mark.parametrize("method", METHODS)
def test_identical_segments_ties_go_to_lower_index(method):
    segments = torch.tensor([[3.0, 9.0]] * 5)
    scores = torch.full((5,), 0.6)
    expected = soft_nms(segments, scores, method=method, iou_threshold=0.5, backend="reference")
    result = soft_nms(segments, scores, method=method, iou_threshold=0.5, backend="extension")
    assert_same(result, expected, torch.float32)
    assert result[0][0].item() == 0
    if method == "gaussian":  # each selection multiplies the rest by exp(-1 / 0.5): the
        # fifth copy falls to 0.6 * exp(-2)^4 < 1e-3 and is dropped
        assert result[0].tolist() == [0, 1, 2, 3]
    if method == "hard":
        assert result[0].tolist() == [0]


@pytest.mark.extension
def test_zero_length_segments():
    segments = torch.tensor([[2.0, 2.0], [2.0, 2.0], [1.0, 3.0], [2.0, 2.5]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    for method in METHODS:
        expected = soft_nms(segments, scores, method=method, backend="reference")
        result = soft_nms(segments, scores, method=method, backend="extension")
        assert_same(result, expected, torch.float32)
        # zero-length segments overlap nothing: no score is decayed by them
        assert torch.isfinite(result[1]).all()
        assert result[0].tolist()[:2] == [0, 1]


@pytest.mark.extension
def test_large_group_of_20k_candidates():
    segments, scores, _ = random_candidates(20_000, 1, seed=5, span=2000.0)
    expected = soft_nms(segments, scores, backend="reference")      # every selection (~2 s)
    assert len(expected[0]) > 5000
    assert_same(soft_nms(segments, scores, backend="extension"), expected, torch.float32)
    assert_same(soft_nms(segments, scores, max_per_group=300, backend="extension"),
                (expected[0][:300], expected[1][:300]), torch.float32)
    keep, new = expected
    assert len(torch.unique(keep)) == len(keep)
    assert (new >= 1e-3).all() and (new[1:] <= new[:-1]).all()  # non-increasing selections


@pytest.mark.extension
def test_thousands_of_tiny_groups():
    segments, scores, _ = random_candidates(6000, 1, seed=7)
    groups = torch.randint(0, 3000, (6000,), generator=torch.Generator().manual_seed(1)) * 11
    expected = soft_nms(segments, scores, groups, backend="reference")
    result = soft_nms(segments, scores, groups, backend="extension")
    assert_same(result, expected, torch.float32)
    kept_groups = groups[result[0]]
    assert (kept_groups[1:] >= kept_groups[:-1]).all()  # groups ascending


@pytest.mark.extension
def test_threads_do_not_change_the_result():
    segments, scores, groups = random_candidates(2000, 50, seed=11)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = soft_nms(segments, scores, groups, backend="extension")
        torch.set_num_threads(max(2, before))
        many = soft_nms(segments, scores, groups, backend="extension")
    finally:
        torch.set_num_threads(before)
    assert_same(many, one, torch.float32)


@pytest.mark.extension
def test_opcheck():
    segments, scores, groups = random_candidates(50, 3, seed=2)
    for args in [(segments, scores, groups, 0.3, 0.5, 1e-3, "gaussian", -1),
                 (segments.double(), scores.double(), None, 0.3, 0.5, 1e-3, "hard", 4)]:
        result = torch.library.opcheck(torch.ops.pytal.soft_nms.default, args)
        assert set(result.values()) == {"SUCCESS"}, result


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("backend", [None, "reference"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scores_are_rejected(backend, bad):
    scores = torch.tensor([0.5, bad])
    with pytest.raises(ValueError, match="scores must be finite"):
        soft_nms(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), scores, backend=backend)


def test_bad_arguments_name_the_argument():
    segs, scores = torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([0.5, 0.4])
    cases = [
        (dict(segments=segs[:, :1]), ValueError, r"segments must have shape \(N, 2\)"),
        (dict(scores=scores[:1]), ValueError, r"scores must have shape \(N,\) = \(2,\)"),
        (dict(scores=scores.double()), TypeError, "scores must have dtype"),
        (dict(segments=segs.half(), scores=scores.half()), TypeError, "segments must have dtype"),
        (dict(groups=torch.tensor([0, 1], dtype=torch.int32)), TypeError, "groups must have dtype"),
        (dict(groups=torch.tensor([0])), ValueError, r"groups must have shape"),
        (dict(groups=torch.tensor([0, 1], device="meta")), ValueError, "groups must be on the device"),
        (dict(method="cubic"), ValueError, "method must be one of"),
        (dict(iou_threshold=1.5), ValueError, r"iou_threshold must be in \[0, 1\]"),
        (dict(sigma=0.0), ValueError, "sigma must be a positive number"),
        (dict(max_per_group=-2), ValueError, "max_per_group must be -1"),
        (dict(segments=torch.tensor([[1.0, 0.0], [2.0, 3.0]])), ValueError, "end >= start"),
        (dict(backend="gpu"), ValueError, "backend must be None"),
    ]
    for override, error, message in cases:
        kwargs = dict(segments=segs, scores=scores, groups=None)
        kwargs.update(override)
        with pytest.raises(error, match=message):
            soft_nms(**kwargs)


@pytest.mark.extension
def test_cpp_checks_guard_direct_op_calls():
    segs, scores = torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([0.5, float("nan")])
    with pytest.raises(ValueError, match="scores must be finite"):
        torch.ops.pytal.soft_nms(segs, scores, None, 0.1, 0.5, 1e-3, "gaussian", -1)
    with pytest.raises(RuntimeError, match='method must be "gaussian"'):
        torch.ops.pytal.soft_nms(segs, scores.nan_to_num(), None, 0.1, 0.5, 1e-3, "x", -1)
    with pytest.raises(RuntimeError, match=r"segments must have shape \(N, 2\)"):
        torch.ops.pytal.soft_nms(segs[:, :1], scores, None, 0.1, 0.5, 1e-3, "gaussian", -1)


def test_forcing_a_missing_kernel_raises(monkeypatch):
    import pytal.ops._backend as backend_module
    monkeypatch.setattr(backend_module, "has_kernel", lambda op, device_type: False)
    with pytest.raises(RuntimeError, match="backend='extension' was asked for"):
        soft_nms(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), backend="extension")
    # and without forcing, the reference runs
    keep, _ = soft_nms(torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]))
    assert keep.tolist() == [0]


def test_backend_info_reports_the_build():
    info = pytal.ops.backend_info()
    for key in ("extension", "cpu", "cuda", "cuda_arch", "ops", "torch", "torch_cuda",
                "cuda_available", "load_error"):
        assert key in info
    assert info["torch"] == torch.__version__
    if info["extension"]:
        assert info["cpu"] and "cpu" in info["ops"]["soft_nms"]
        assert info["load_error"] is None
        if info["cuda"]:
            assert info["cuda_arch"] and "cuda" in info["ops"]["soft_nms"]


# ---------------------------------------------------------------------------------- CUDA

@pytest.mark.cuda
@pytest.mark.extension
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,num_groups", [(600, 7), (6000, 3000), (20_000, 1), (1, 1)])
def test_cuda_kernel_matches_reference(method, dtype, n, num_groups):
    segments, scores, groups = random_candidates(n, num_groups, seed=n, dtype=dtype,
                                                 span=max(100.0, n / 10))
    kwargs = dict(iou_threshold=0.3, method=method)
    expected = soft_nms(segments, scores, groups, backend="reference", **kwargs)
    result = soft_nms(segments.cuda(), scores.cuda(), groups.cuda(), backend="extension",
                      **kwargs)
    assert result[0].device.type == "cuda"
    assert_same(result, expected, dtype)


@pytest.mark.cuda
@pytest.mark.extension
def test_cuda_identical_segments_and_empty():
    segments = torch.tensor([[3.0, 9.0]] * 5, device="cuda")
    keep, _ = soft_nms(segments, torch.full((5,), 0.6, device="cuda"))
    assert keep.tolist() == [0, 1, 2, 3]
    keep, new = soft_nms(torch.empty(0, 2, device="cuda"), torch.empty(0, device="cuda"))
    assert keep.shape == (0,) and new.device.type == "cuda"


@pytest.mark.cuda
@pytest.mark.extension
def test_cuda_device_mismatch_is_rejected():
    with pytest.raises(ValueError, match="scores must be on the device of segments"):
        soft_nms(torch.tensor([[0.0, 1.0]], device="cuda"), torch.tensor([0.5]))

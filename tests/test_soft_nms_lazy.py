"""The CPU soft_nms kernel (decays applied lazily, csrc/soft_nms/soft_nms_lazy.h) against the
reference on adversarial candidate sets -- ties, duplicates, nested and zero-length segments,
disjoint clusters, many groups -- and bitwise against the kernel's eager path; the CPU
soft_nms_top_k kernel (the groups' selections merged per video) against its reference."""
from __future__ import annotations

import pytest
import torch

from pytal.ops import soft_nms, soft_nms_top_k
from pytal.postprocess import batched_nms

METHODS = ("gaussian", "linear", "hard")
DTYPES = (torch.float32, torch.float64)

pytestmark = pytest.mark.extension


def adversarial_candidates(n, num_groups, *, seed, dtype):
    """(segments (n, 2), scores (n,), groups (n,)): starts on a coarse grid (shared starts
    and ends), a tenth of zero length, some nested in others, a sixth duplicating another
    candidate's segment, scores on a 0.05 grid (ties, some exactly 0 and 1), clusters far
    apart so that many pairs are disjoint."""
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, 6, (n,), generator=g).to(torch.float64) * 1000.0
    start = cluster + torch.randint(0, 60, (n,), generator=g) * 0.5
    length = torch.randint(0, 40, (n,), generator=g) * 0.25
    length[torch.rand(n, generator=g) < 0.1] = 0.0
    segments = torch.stack([start, start + length], 1)
    if n > 1:
        outer = torch.randint(0, n, (n,), generator=g)
        nested = torch.rand(n, generator=g) < 0.15
        inner = segments[outer] + torch.tensor([0.25, -0.25], dtype=torch.float64)
        inner[:, 1] = torch.maximum(inner[:, 1], inner[:, 0])
        segments[nested] = inner[nested]
        source = torch.randint(0, n, (n,), generator=g)
        dup = torch.rand(n, generator=g) < 0.17
        segments[dup] = segments[source[dup]]
    scores = torch.randint(0, 21, (n,), generator=g).to(torch.float64) * 0.05
    groups = torch.randint(0, num_groups, (n,), generator=g)
    return segments.to(dtype), scores.to(dtype), groups


def assert_matches_reference(segments, scores, groups, dtype, **nms):
    keep, new_scores = soft_nms(segments, scores, groups, backend="extension", **nms)
    keep_ref, scores_ref = soft_nms(segments, scores, groups, backend="reference", **nms)
    assert keep.dtype == torch.int64 and new_scores.dtype == dtype
    assert keep.tolist() == keep_ref.tolist()
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(new_scores, scores_ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("iou_threshold,min_score,max_per_group",
                         [(0.1, 1e-3, -1), (0.0, 0.0, -1), (0.5, 0.2, 7), (0.3, 1e-3, 50)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adversarial_sets_match_reference(dtype, method, iou_threshold, min_score,
                                          max_per_group, seed):
    segments, scores, groups = adversarial_candidates(300, 4, seed=seed, dtype=dtype)
    assert_matches_reference(segments, scores, groups, dtype, iou_threshold=iou_threshold,
                             sigma=0.5, min_score=min_score, method=method,
                             max_per_group=max_per_group)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_one_class_agnostic_group_of_2000_matches_reference(dtype, method):
    segments, scores, _ = adversarial_candidates(2000, 1, seed=5, dtype=dtype)
    assert_matches_reference(segments, scores, None, dtype, iou_threshold=0.2, sigma=0.75,
                             min_score=1e-3, method=method, max_per_group=100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_small_groups_match_reference(dtype):
    segments, scores, groups = adversarial_candidates(3000, 800, seed=6, dtype=dtype)
    assert_matches_reference(segments, scores, groups, dtype, iou_threshold=0.1, sigma=0.5,
                             min_score=1e-3, method="gaussian", max_per_group=-1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_candidate(dtype, n):
    segments, scores, groups = adversarial_candidates(n, 1, seed=7, dtype=dtype)
    scores = torch.full((n,), 0.5, dtype=dtype)
    keep, new_scores = soft_nms(segments, scores, groups, backend="extension")
    assert keep.tolist() == list(range(n))
    assert new_scores.tolist() == [0.5] * n


@pytest.mark.parametrize("method", METHODS)
def test_candidates_under_min_score_are_never_selected(method):
    segments, scores, groups = adversarial_candidates(400, 3, seed=8, dtype=torch.float64)
    keep, new_scores = soft_nms(segments, scores, groups, method=method, min_score=0.3,
                                iou_threshold=0.2, backend="extension")
    assert bool((scores[keep] >= 0.3).all()) and bool((new_scores >= 0.3).all())
    assert_matches_reference(segments, scores, groups, torch.float64, method=method,
                             min_score=0.3, iou_threshold=0.2, sigma=0.5)


def test_hard_with_threshold_zero_suppresses_disjoint_segments_too():
    segments = torch.tensor([[0.0, 1.0], [5.0, 6.0], [10.0, 11.0]], dtype=torch.float64)
    scores = torch.tensor([0.3, 0.9, 0.5], dtype=torch.float64)
    keep, new_scores = soft_nms(segments, scores, method="hard", iou_threshold=0.0,
                                backend="extension")
    assert keep.tolist() == [1] and new_scores.tolist() == [0.9]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_negative_scores_match_reference(dtype, method):
    segments, scores, groups = adversarial_candidates(300, 3, seed=9, dtype=dtype)
    assert_matches_reference(segments, scores - 0.5, groups, dtype, method=method,
                             min_score=-0.4, iou_threshold=0.1, sigma=0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1])
def test_lazy_path_is_bitwise_equal_to_the_eager_path(dtype, method, seed):
    # One candidate with a negative score, far from the others (IoU 0 with every one of
    # them), sends its group down the kernel's eager path: every candidate decayed after
    # every selection. Its own selection comes last and changes no other score, so the
    # others must come out exactly as from the lazy path.
    segments, scores, _ = adversarial_candidates(500, 1, seed=seed, dtype=dtype)
    nms = dict(method=method, iou_threshold=0.1, sigma=0.5, min_score=-1.0)
    keep, new_scores = soft_nms(segments, scores, backend="extension", **nms)
    far = torch.tensor([[1e6, 1e6 + 1.0]], dtype=dtype)
    keep_eager, scores_eager = soft_nms(torch.cat([segments, far]),
                                        torch.cat([scores, scores.new_tensor([-0.5])]),
                                        backend="extension", **nms)
    assert keep_eager.tolist() == keep.tolist() + [len(scores)]
    assert torch.equal(scores_eager[:-1], new_scores)


@pytest.mark.parametrize("voting_weight", ["score", "score_iou"])
def test_class_agnostic_batched_nms_with_voting_matches_reference(voting_weight):
    segments, scores, videos = adversarial_candidates(1500, 5, seed=10, dtype=torch.float32)
    labels = torch.zeros_like(videos)
    nms = dict(iou_threshold=0.1, sigma=0.75, min_score=1e-3, multiclass=False,
               voting_thresh=0.9, max_seg_num=100, voting_weight=voting_weight)
    got = batched_nms(segments, scores, labels, videos, backend="extension", **nms)
    want = batched_nms(segments, scores, labels, videos, backend="reference", **nms)
    assert torch.equal(got[3], want[3]) and torch.equal(got[2], want[2])
    torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=0)
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-5)


def video_groups(n, num_videos, num_classes, *, seed):
    g = torch.Generator().manual_seed(seed)
    videos = torch.randint(0, num_videos, (n,), generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return videos * num_classes + labels, videos


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [0, 1, 7, 60, 1000])
@pytest.mark.parametrize("seed", [0, 1])
def test_top_k_matches_reference(dtype, method, k, seed):
    segments, scores, _ = adversarial_candidates(1200, 1, seed=seed, dtype=dtype)
    groups, videos = video_groups(1200, 4, 6, seed=seed)
    nms = dict(k=k, method=method, iou_threshold=0.2, sigma=0.5, min_score=1e-3)
    keep, new_scores = soft_nms_top_k(segments, scores, groups, videos, backend="extension",
                                      **nms)
    keep_ref, scores_ref = soft_nms_top_k(segments, scores, groups, videos,
                                          backend="reference", **nms)
    assert keep.tolist() == keep_ref.tolist()
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(new_scores, scores_ref, rtol=rtol, atol=0)
    per_video = torch.bincount(videos[keep], minlength=4)
    assert bool((per_video <= k).all())


def test_top_k_ties_go_to_the_lower_group_then_selection_order():
    segments = torch.tensor([[0.0, 1.0], [10.0, 11.0], [0.0, 1.0], [20.0, 21.0], [5.0, 6.0]],
                            dtype=torch.float64)
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.9], dtype=torch.float64)
    groups = torch.tensor([3, 2, 2, 3, 1])
    videos = torch.zeros(5, dtype=torch.long)
    keep, new_scores = soft_nms_top_k(segments, scores, groups, videos, k=4,
                                      backend="extension")
    assert keep.tolist() == [4, 1, 2, 0]
    assert new_scores.tolist() == [0.9, 0.5, 0.5, 0.5]


def test_top_k_rejects_groups_across_videos_and_negative_min_score():
    segments = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    scores = torch.tensor([0.5, 0.4])
    with pytest.raises(RuntimeError, match="one video"):
        torch.ops.pytal.soft_nms_top_k(segments, scores, torch.tensor([0, 0]),
                                       torch.tensor([0, 1]), 0.1, 0.5, 0.0, "gaussian", 5)
    with pytest.raises(RuntimeError, match="video order"):
        torch.ops.pytal.soft_nms_top_k(segments, scores, torch.tensor([1, 0]),
                                       torch.tensor([0, 1]), 0.1, 0.5, 0.0, "gaussian", 5)
    with pytest.raises(ValueError, match="min_score"):
        soft_nms_top_k(segments, scores, torch.tensor([0, 1]), torch.tensor([0, 1]), k=5,
                       min_score=-0.1)


@pytest.mark.parametrize("multiclass", [True, False])
def test_batched_nms_on_the_top_k_kernel_matches_reference(multiclass):
    segments, scores, _ = adversarial_candidates(2000, 1, seed=11, dtype=torch.float32)
    labels, videos = video_groups(2000, 5, 20, seed=11)
    labels = labels % 20
    nms = dict(iou_threshold=0.1, sigma=0.5, min_score=1e-3, multiclass=multiclass,
               max_seg_num=40)
    got = batched_nms(segments, scores, labels, videos, backend="extension", **nms)
    want = batched_nms(segments, scores, labels, videos, backend="reference", **nms)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_top_k_opcheck():
    segments, scores, _ = adversarial_candidates(60, 1, seed=12, dtype=torch.float32)
    groups, videos = video_groups(60, 3, 4, seed=12)
    for args in [(segments, scores, groups, videos, 0.3, 0.5, 1e-3, "gaussian", 5),
                 (segments.double(), scores.double(), groups, videos, 0.3, 0.5, 0.0, "hard", 0)]:
        result = torch.library.opcheck(torch.ops.pytal.soft_nms_top_k.default, args)
        assert set(result.values()) == {"SUCCESS"}, result


def random_case(seed):
    """Candidates (adversarial_candidates) and Soft-NMS arguments drawn at random."""
    g = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[int(torch.randint(0, len(options), (1,), generator=g))]

    n = int(torch.randint(0, 160, (1,), generator=g))
    dtype = pick(DTYPES)
    segments, scores, groups = adversarial_candidates(n, pick([1, 3, 9]), seed=seed,
                                                      dtype=dtype)
    nms = dict(method=pick(METHODS), iou_threshold=pick([0.0, 0.1, 0.5, 1.0]),
               sigma=pick([0.5, 0.75]), min_score=pick([0.0, 1e-3, 0.3]))
    return segments, scores, groups, nms, pick([-1, 0, 1, 5, 60])


@pytest.mark.parametrize("block", range(4))
def test_many_random_sets_match_reference(block):
    for seed in range(100 * block, 100 * (block + 1)):
        segments, scores, groups, nms, limit = random_case(seed)
        for g in (None, groups):
            assert_matches_reference(segments, scores, g, segments.dtype, max_per_group=limit,
                                     **nms)


def test_group_numbering_does_not_change_the_selections():
    # The CPU kernel groups candidates in one pass when the groups come sorted, by a counting
    # sort when their numbers span a few times N, else by a stable sort: each must give the
    # same groups in the same order, positions within a group in input order.
    segments, scores, groups = adversarial_candidates(900, 12, seed=13, dtype=torch.float32)
    order = torch.argsort(groups, stable=True)
    expected = soft_nms(segments, scores, groups, backend="extension", max_per_group=30)
    numberings = {
        "negative, small span": groups - 7,
        "huge span": groups * 10**15 - 5 * 10**18,
        "sparse": groups * groups * 1000,
    }
    for name, numbered in numberings.items():
        keep, new_scores = soft_nms(segments, scores, numbered, backend="extension",
                                    max_per_group=30)
        assert torch.equal(keep, expected[0]), name
        assert torch.equal(new_scores, expected[1]), name
    # Sorted input (no sort at all): the same selections, renumbered.
    keep, new_scores = soft_nms(segments[order], scores[order], groups[order],
                                backend="extension", max_per_group=30)
    assert torch.equal(order[keep], expected[0]) and torch.equal(new_scores, expected[1])


@pytest.mark.parametrize("block", range(2))
def test_many_random_top_k_sets_match_reference(block):
    for seed in range(100 * block, 100 * (block + 1)):
        segments, scores, _, nms, limit = random_case(seed)
        groups, videos = video_groups(len(scores), 3, 4, seed=seed)
        k = max(limit, 0)
        keep, new_scores = soft_nms_top_k(segments, scores, groups, videos, k=k,
                                          backend="extension", **nms)
        keep_ref, scores_ref = soft_nms_top_k(segments, scores, groups, videos, k=k,
                                              backend="reference", **nms)
        assert keep.tolist() == keep_ref.tolist(), seed
        rtol = 1e-6 if segments.dtype == torch.float32 else 1e-12
        torch.testing.assert_close(new_scores, scores_ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("min_score", [1e-3, -0.2])
@pytest.mark.parametrize("voting_thresh", [0.0, 0.8])
def test_one_class_agnostic_video_equals_the_batched_form(min_score, voting_thresh):
    # Without video_index a class-agnostic call is one soft_nms group (its first max_seg_num
    # selections); with it, the per-video top-k path. Both must give the same detections.
    segments, scores, _ = adversarial_candidates(700, 1, seed=14, dtype=torch.float32)
    labels = torch.randint(0, 5, (700,), generator=torch.Generator().manual_seed(14))
    nms = dict(iou_threshold=0.1, sigma=0.75, min_score=min_score, multiclass=False,
               voting_thresh=voting_thresh, max_seg_num=50, backend="extension")
    one = batched_nms(segments, scores - 0.1, labels, **nms)
    batched = batched_nms(segments, scores - 0.1, labels, torch.zeros_like(labels), **nms)
    for a, b in zip(one, batched[:3]):
        assert torch.equal(a, b)
    reference = batched_nms(segments, scores - 0.1, labels, **dict(nms, backend="reference"))
    assert torch.equal(one[2], reference[2])
    torch.testing.assert_close(one[1], reference[1], rtol=1e-6, atol=0)

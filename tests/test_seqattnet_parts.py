"""SeqAttNet's parts: boundary-matching weights, 3D input amassment, labels, losses,
candidates, and the shapes through every module."""
import math

import pytest
import torch

from pytal.models.seqattnet.amassment import GROUP_STEPS, amass, amass_groups
from pytal.models.seqattnet.boundary_matching import (BoundaryMatching,
                                                      boundary_matching_weights,
                                                      proposal_valid_mask)
from pytal.models.seqattnet.inference import boundary_candidates, select_proposals
from pytal.models.seqattnet.labels import boundary_labels, error_targets, iou_map
from pytal.models.seqattnet.losses import (l2_penalty, masked_mse, nll,
                                           weighted_logistic_loss)
from pytal.models.seqattnet.modules import (BaseModule, ProposalEvaluation, SequentialHead,
                                            TemporalAttention, TemporalEvaluation)


@pytest.fixture(autouse=True)
def one_thread():
    """Many small ops: on 2 shared cores, more threads only add overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------- boundary matching
def _direct_weights(T, D, N, S, ratio):
    """W[i, n, d, t] by the definition: each point's value is sum_i max(0, 1 - |x - i|) f_i."""
    w = torch.zeros(T, N, D, T, dtype=torch.float64)
    for d in range(D):
        for t in range(T):
            if t + d + 1 > T - 1:
                continue
            length = d + 1
            lo, hi = t - ratio * length, t + d + 1 + ratio * length
            for n in range(N):
                for s in range(S):
                    k = n * S + s
                    x = lo + (hi - lo) * k / (N * S - 1)
                    for i in range(T):
                        w[i, n, d, t] += max(0.0, 1.0 - abs(x - i)) / S
    return w


@pytest.mark.parametrize("T,D,N,S,ratio", [(7, 7, 3, 2, 0.5), (9, 4, 4, 3, 0.25),
                                           (6, 5, 2, 1, 0.0)])
def test_boundary_matching_weights_match_direct_computation(T, D, N, S, ratio):
    got = boundary_matching_weights(T, D, N, S, ratio)
    assert got.shape == (T, N, D, T) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), _direct_weights(T, D, N, S, ratio),
                               atol=1e-6, rtol=0)


def test_boundary_matching_weights_of_inner_proposals_sum_to_one():
    w = boundary_matching_weights(20, 6, 4, 3, 0.0)          # no context: inside [0, T-1]
    valid = proposal_valid_mask(20, 6)
    sums = w.sum(0)                                           # (N, D, T)
    torch.testing.assert_close(sums[:, valid], torch.ones_like(sums[:, valid]))
    assert (sums[:, ~valid] == 0).all()


def test_boundary_matching_layer_and_fused_conv3d():
    torch.manual_seed(0)
    T, D, N, C, H = 10, 6, 4, 5, 7
    bm = BoundaryMatching(T, D, N, 3, 0.5)
    x = torch.randn(2, C, T, dtype=torch.float64)
    out = bm.double()(x)
    assert out.shape == (2, C, N, D, T)
    want = torch.einsum("bci,indt->bcndt", x, boundary_matching_weights(T, D, N, 3, 0.5).double())
    torch.testing.assert_close(out, want)
    conv = torch.nn.Conv3d(C, H, (N, 1, 1), stride=(N, 1, 1)).double()
    torch.testing.assert_close(bm.fused_conv3d(x, conv), conv(out).squeeze(2))
    assert "weights" not in bm.state_dict()                   # a function of the config
    with pytest.raises(ValueError, match="T = 10"):
        bm(torch.randn(1, C, 9))


# ----------------------------------------------------------------------- amassment
def test_amassment_matches_a_loop():
    torch.manual_seed(1)
    feats = torch.randn(3, 4, 12)
    video = torch.tensor([0, 2, 1, 2, 0, 1])
    props = torch.tensor([[0.0, 3.0], [2.4, 2.6], [5.6, 11.0], [-2.0, 20.0], [7.0, 4.0],
                          [3.5, 8.49]])
    length = 8
    x, valid = amass(feats, video, props, length)
    assert x.shape == (6, 4, length) and valid.shape == (6, length)
    for p in range(6):
        first = min(max(round(props[p, 0].item()), 0), 11)
        last = min(max(round(props[p, 1].item()), 0), 11)
        steps = list(range(first, max(last, first) + 1))[:length]
        want = torch.zeros(4, length)
        for j, i in enumerate(steps):
            want[:, j] = feats[video[p], :, i]
        torch.testing.assert_close(x[p], want)
        assert valid[p].tolist() == [j < len(steps) for j in range(length)]


def _random_proposals(generator, count, t_len, max_len):
    start = torch.randint(-2, t_len, (count,), generator=generator).float()
    length = torch.randint(0, max_len, (count,), generator=generator).float()
    return torch.stack((start, start + length), dim=1) + 0.3


def test_amassment_groups_are_the_padded_input_cut_to_each_groups_length():
    gen = torch.manual_seed(2)
    feats = torch.randn(3, 5, 40)
    video = torch.randint(0, 3, (60,), generator=gen)
    props = _random_proposals(gen, 60, 40, 45)
    length = 37                                      # T_p, not a multiple of GROUP_STEPS
    x_full, valid_full = amass(feats, video, props, length)
    seen = []
    for index, x, valid in amass_groups(feats, video, props, length):
        steps = x.shape[2]
        assert steps == length or steps % GROUP_STEPS == 0
        count = valid.sum(1)
        assert (count > steps - GROUP_STEPS).all()       # the shortest fit: no wasted group
        torch.testing.assert_close(x, x_full[index, :, :steps], rtol=0, atol=0)
        assert torch.equal(valid, valid_full[index, :steps])
        assert not valid_full[index, steps:].any()
        seen.append(index)
    assert sorted(torch.cat(seen).tolist()) == list(range(60))
    assert list(amass_groups(feats, video[:0], props[:0], length)) == []


@pytest.mark.parametrize("activation,out_dim", [("tanh", 2), ("log_softmax", 9)])
def test_heads_on_a_shorter_input_equal_the_padded_input(activation, out_dim):
    """The heads run on each group's steps only; padding must change nothing, in the
    output or in the gradients."""
    torch.manual_seed(3)
    P, F_in, Tp, L = 7, 6, 30, 16
    head = SequentialHead(Tp, F_in, out_dim, activation).double()
    count = torch.tensor([1, 16, 3, 9, 16, 5, 12])
    valid = torch.arange(Tp)[None] < count[:, None]
    x = torch.randn(P, F_in, Tp, dtype=torch.float64) * valid[:, None, :]
    full = head(x, valid)
    full.square().sum().backward()
    grads = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()
    short = head(x[:, :, :L].contiguous(), valid[:, :L])
    short.square().sum().backward()
    torch.testing.assert_close(short, full)
    for got, want in zip((p.grad for p in head.parameters()), grads):
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="L <= T_p = 30"):
        head(torch.randn(P, F_in, Tp + 1, dtype=torch.float64), torch.ones(P, Tp + 1).bool())


# ----------------------------------------------------------------------- labels
def test_boundary_labels_hand_computed():
    # d_g = 5: regions [1.95, 2.95] and [6.95, 7.95]; step regions [n - 0.1, n + 0.1]
    gs, ge = boundary_labels(torch.tensor([[2.45, 7.45]], dtype=torch.float64), 10)
    want_s = torch.zeros(10, dtype=torch.float64)
    want_s[2], want_s[3] = 0.75, 0.25
    want_e = torch.zeros(10, dtype=torch.float64)
    want_e[7], want_e[8] = 0.75, 0.25
    torch.testing.assert_close(gs, want_s)
    torch.testing.assert_close(ge, want_e)


def test_boundary_labels_take_the_largest_over_ground_truths():
    # [0, 10]: start region [-1, 1] covers steps 0 (IoR 1) and 1 (IoR 0.5);
    # [1.05, 2.05]: start region [0.95, 1.15] covers step 1's [0.9, 1.1] by 0.15 -> 0.75
    gs, ge = boundary_labels(torch.tensor([[0.0, 10.0], [1.05, 2.05]], dtype=torch.float64), 12)
    assert gs[:3].tolist() == pytest.approx([1.0, 0.75, 0.0])
    assert gs[3:].abs().sum() == 0
    # ends: [9, 11] covers half of step 9's and 11's regions, all of 10's;
    # [1.95, 2.15] covers step 2's region by 0.15
    assert ge.tolist() == pytest.approx([0, 0, 0.75, 0, 0, 0, 0, 0, 0, 0.5, 1, 0.5])
    empty_s, empty_e = boundary_labels(torch.zeros(0, 2), 5)
    assert empty_s.tolist() == [0] * 5 and empty_e.tolist() == [0] * 5


def test_iou_map_hand_computed():
    g = iou_map(torch.tensor([[1.0, 3.0]]), 5, 3)            # (D, T), proposal [t, t + d + 1]
    assert g.shape == (3, 5)
    assert g[1, 1].item() == pytest.approx(1.0)               # [1, 3]
    assert g[0, 1].item() == pytest.approx(0.5)               # [1, 2]
    assert g[2, 0].item() == pytest.approx(2 / 3)             # [0, 3]
    assert g[0, 0].item() == 0.0                              # [0, 1]
    assert g[0, 2].item() == pytest.approx(0.5)               # [2, 3]
    assert g[2, 2].item() == pytest.approx(1 / 4)             # [2, 5]
    two = iou_map(torch.tensor([[1.0, 3.0], [0.0, 1.0]]), 5, 3)
    assert two[0, 0].item() == pytest.approx(1.0) and two[1, 1].item() == pytest.approx(1.0)


def test_error_targets_hand_computed():
    got = error_targets(torch.tensor([[10.0, 20.0]]), torch.tensor([[12.0, 18.0]]), 100)
    torch.testing.assert_close(got, torch.tensor([[0.02, -0.02]]))


# ----------------------------------------------------------------------- losses
def test_weighted_logistic_loss_hand_computed():
    prob = torch.tensor([0.8, 0.4, 0.1, 0.3])
    target = torch.tensor([0.9, 0.2, 0.6, 0.5])             # 0.5 is not above theta
    want = -(math.log(0.8) + math.log(0.1)) / 2 - (math.log(0.6) + math.log(0.7)) / 2
    assert weighted_logistic_loss(prob, target, 0.5).item() == pytest.approx(want, rel=1e-5)
    valid = torch.tensor([True, True, False, False])
    want = -math.log(0.8) - math.log(0.6)
    assert weighted_logistic_loss(prob, target, 0.5, valid).item() == pytest.approx(want, rel=1e-5)
    only_neg = weighted_logistic_loss(prob, torch.zeros(4), 0.5)
    assert only_neg.item() == pytest.approx(-sum(math.log(1 - p) for p in prob.tolist()) / 4,
                                            rel=1e-5)


def test_masked_mse_l2_and_nll():
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 0.0, 0.0])
    assert masked_mse(pred, target, torch.tensor([True, False, True])).item() == pytest.approx(8.5)
    assert masked_mse(pred, target, torch.zeros(3, dtype=torch.bool)).item() == 0.0
    w, b = torch.nn.Parameter(torch.tensor([[1.0, 2.0]])), torch.nn.Parameter(torch.tensor([5.0]))
    assert l2_penalty([w, b]).item() == pytest.approx(5.0)    # biases are not penalised
    logp = torch.log_softmax(torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]), dim=1)
    want = -(logp[0, 1] + logp[1, 2]) / 2
    assert nll(logp, torch.tensor([1, 2])).item() == pytest.approx(want.item())
    assert nll(logp[:0], torch.zeros(0, dtype=torch.long)).item() == 0.0


# ----------------------------------------------------------------------- candidates
def test_boundary_candidates_are_peaks_or_above_half_the_max():
    prob = torch.tensor([[0.1, 0.3, 0.2, 0.05, 0.9, 0.5, 0.46, 0.1]])
    got = boundary_candidates(prob, 0.5)[0].tolist()
    assert got == [False, True, False, False, True, True, True, False]


def test_select_proposals_pairs_starts_and_ends_and_scores_them():
    T, D = 6, 4
    boundaries = torch.zeros(1, 2, T)
    boundaries[0, 0] = torch.tensor([0.9, 0.1, 0.1, 0.1, 0.1, 0.1])   # start at 0
    boundaries[0, 1] = torch.tensor([0.1, 0.1, 0.1, 0.8, 0.1, 0.1])   # end at 3
    maps = torch.full((1, 2, D, T), 0.5)
    video, props, score = select_proposals(boundaries, maps, proposal_valid_mask(T, D),
                                           peak_ratio=0.5, max_candidates=10)
    assert props.tolist() == [[0.0, 3.0]]                      # d = 2, t = 0
    assert video.tolist() == [0]
    assert score.item() == pytest.approx(0.9 * 0.8 * 0.25)
    # a proposal longer than D steps is not a candidate
    video, props, _ = select_proposals(boundaries, maps[:, :, :2], proposal_valid_mask(T, 2),
                                       peak_ratio=0.5, max_candidates=10)
    assert props.shape == (0, 2)


# ----------------------------------------------------------------------- module shapes
def test_shapes_through_every_module():
    torch.manual_seed(0)
    B, F_in, C, T, D, N = 2, 6, 8, 12, 10, 4
    x = torch.randn(B, F_in, T)
    base = BaseModule(F_in, C)(x)
    assert base.shape == (B, C, T)
    tem = TemporalEvaluation(C)(base)
    assert tem.shape == (B, 2, T) and ((tem > 0) & (tem < 1)).all()
    pem = ProposalEvaluation(C, T, D, N, 3, 0.5, 16, 8)(base)
    assert pem.shape == (B, 2, D, T) and ((pem > 0) & (pem < 1)).all()
    P, Tp = 5, 7
    X = torch.randn(P, F_in, Tp)
    valid = torch.arange(Tp)[None] < torch.tensor([1, 3, 7, 2, 5])[:, None]
    ax = TemporalAttention(Tp)(X, valid)
    assert ax.shape == (P, F_in, Tp)
    assert (ax[~valid[:, None, :].expand_as(ax)] == 0).all()
    err = SequentialHead(Tp, F_in, 2, "tanh")(X, valid)
    assert err.shape == (P, 2) and (err.abs() < 1).all()
    cls = SequentialHead(Tp, F_in, 11, "log_softmax")(X, valid)
    assert cls.shape == (P, 11)
    torch.testing.assert_close(cls.exp().sum(1), torch.ones(P))
    with pytest.raises(ValueError, match="activation"):
        SequentialHead(Tp, F_in, 2, "relu")


def test_attention_is_a_softmax_over_the_valid_steps_shared_by_features():
    att = TemporalAttention(4)
    X = torch.ones(1, 3, 4)
    valid = torch.tensor([[True, True, False, False]])
    ax = att(X, valid)
    torch.testing.assert_close(ax.sum(-1), torch.full((1, 3), 2.0))  # weights sum to L = 2
    assert torch.allclose(ax[0, 0], ax[0, 1])                  # same map for equal rows

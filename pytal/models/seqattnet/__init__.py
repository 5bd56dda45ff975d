"""SeqAttNet (Mokari and Haj Sadeghi, "Enhancing Temporal Action Localization with 3D Input
and Attention Mechanisms"), built on pytal. Its proposal stage follows BMN (Lin et al., ICCV
2019), which also fills in what the paper leaves out (boundary-matching sampling, score
fusion).

    feats (B, F, T = 100)
    base:        2 x Conv1D(3, 256, ReLU)                                    (B, 256, T)
    temporal:    start / end branches Conv1D(3, 256, ReLU), Conv1D(1, 1, sigmoid)   (B, 2, T)
    proposal:    Conv1D(3, 256) -> boundary matching (N = 32 points per proposal) and
                 Conv3D(N,1,1) 512 as one matmul -> Conv2D 1x1 128 -> 2 x Conv2D 3x3 128
                 -> Conv2D 1x1 2 = confidence maps [M_CR, M_CC] (B, 2, D, T)
    3D input:    features inside each proposal, aligned, zero-padded to T_p (P, F, T_p)
    error head:  attention (Linear T_p x T_p shared by the features, softmax over the valid
                 steps x their count)
                 -> Linear T_p -> 1 + ReLU -> Linear F -> 2 + tanh = (delta_s, delta_e) / T
    class head:  the same with its own weights, Linear F -> C + log-softmax
    train:       boundary labels, IoU map, error targets -> L_pe + L_te + L_cl + L_er + L2
    predict:     candidates (peaks or >= half max) scored P = p_s p_e M_CR M_CC -> errors,
                 classes -> S = P x Cscore -> batched_nms -> seconds

Where the paper leaves a choice open, pytal takes (see docs/seqattnet.md):

* two temporal-evaluation branches (start, end), each as the paper's Table 1 lists;
* BMN's sampling (3 points per bin, the proposal extended by half its length on each side)
  and BMN's score fusion for P;
* the attention map as a softmax over the proposal's L steps of the Linear's output, times
  L (uniform attention is 1), applied by an element-wise product;
* the 3D input from the input features (``model.amassment_features: input``; ``base`` uses
  the base module's output);
* the error estimator trained on map proposals that overlap a ground truth
  (``model.error_iou``), since ground-truth proposals have no error.

Modules: ``config`` (the keys), ``boundary_matching``, ``labels``, ``amassment``,
``modules`` (the networks), ``losses``, ``inference`` (candidates), ``model``.
"""
from pytal.models.seqattnet.config import SeqAttNetConfig
from pytal.models.seqattnet.model import SeqAttNet

__all__ = ["SeqAttNet", "SeqAttNetConfig"]

"""CLTDR-GMG: Cross-Layer Task Decoupling and Refinement with Gated Multi-Granularity encoding
(Li et al., "Temporal Action Localization with Cross Layer Task Decoupling and Refinement",
AAAI 2025), built on pytal's ops. The authors' public code (github.com/LiQiang0307/CLTDR-GMG,
on ActionFormer and TriDet) is the reference for what the paper leaves out.

What the assembled model (``pytal.models.CLTDRGMG``, registered as ``"cltdr_gmg"``) does::

    feats (B, C_in, T), masks (B, 1, T)  --pad to max(max_seq_len, multiple of 2**(L-1))-->
                                          (inference_padding: stride -> the multiple only)
    encoder: projection convs (+LN, ReLU) [+ sinusoid PE] -> GMG stem -> GMG branch (max-pool /2)
             = pyramid P_0..P_{L-1}, (B, C, T / 2**l)           (pytal.nn.GMGBlock, pytal.ops.gmg)
    neck:    LayerNorm per level
    decoder: cls_decoupler(P) -> cls_head;  reg_decoupler(P) -> trident_head.offset,
             P (detached) -> trident_head.start/end;  fusion(P) -> refine_head
    train:   label assignment -> refined branch (varifocal on refined logits, IoU-weighted,
             DIoU on refined distances) and coarse branch (focal, DIoU), mixed w / 1 - w
    detect:  refined scores -> threshold + top-k per level -> trident_decode(index=...) of the
             kept candidates -> boundary refinement -> one batched_nms for the batch -> seconds

The GMG blocks see every padded step; the projection, the decoder's resampling and the heads
run on the valid extent plus their kernels' reach (same outputs: ``model.forward_heads``).

Known limits (padding of very long inputs, ActivityNet's external class scores, accepted but
unused keys): ``docs/index.md``, section CLTDR-GMG.

Package layout (one job per module; the parts any point-based detector shares, i.e. points,
label assignment, losses, conv towers / classification head, candidate selection, NMS and
seconds, are in :mod:`pytal.models.common`):

* ``decoder``     Decoupled Classification / Regression Modules, Cross-Layer Feature Fusion
* ``heads``       TridentHead (logits for ``pytal.ops.trident_decode``), RefineHead
* ``refinement``  refined scores (paper vs release) and refined boundaries
* ``convert``     ``convert_release_checkpoint``: public-code state dicts -> pytal names
* ``config``      ``CLTDRGMGConfig``: the ``model.*`` keys, their types and defaults
* ``encoder``     ``GMGEncoder`` (projection, position embedding, GMG stem and branch), ``PyramidNorm``
* ``model``       ``CLTDRGMG``: the assembled detector, its training losses, ``detect`` and the
                  protocol of :mod:`pytal.models.protocol` (``forward(batch)``, ``predict``)

Module names of the assembled ``pytal.models.CLTDRGMG`` (the contract ``convert`` relies on)::

    encoder.embed     ConvTower: projection convs + channel LayerNorm + ReLU
    encoder.stem.<i>  GMGBlock (no downsampling)      encoder.branch.<i>  GMGBlock (max-pool /2)
    neck.norms.<l>    ChannelLayerNorm per level (the release's identity neck)
    cls_decoupler     DecoupledClassification          reg_decoupler  DecoupledRegression
    fusion            CrossLayerFusion
    cls_head          ClassificationHead on cls_decoupler's output
    trident_head      TridentHead: .offset on reg_decoupler's output, .start/.end on the pyramid
    refine_head       RefineHead on fusion's output

Public-code parameter names (after stripping DataParallel's ``module.``) and pytal's:

=====================================  =============================================
release                                pytal
=====================================  =============================================
backbone.embd.<i>.conv.*               encoder.embed.convs.<i>.conv.*
backbone.embd_norm.<i>.{weight,bias}   encoder.embed.norms.<i>.*
backbone.{stem,branch}.<i>.*           encoder.{stem,branch}.<i>.* (GMGBlock's own renames:
                                       w1/b1/w2/b2 -> filter_*, convw -> conv_*, fc -> instant_*)
neck.fpn_norms.<l>.*                   neck.norms.<l>.*
decls.contrans.*  (ConvTranspose1d)    cls_decoupler.upsample.*
decls.conv_l.*    (1x1)                cls_decoupler.attention.lateral.*
decls.attn.1.*    (1x1 after GAP)      cls_decoupler.attention.fc.*
dereg.down.*      (k3 s2 conv)         reg_decoupler.downsample.*
dereg.conv_l.*, dereg.attn.1.*         reg_decoupler.attention.{lateral,fc}.*
cross_level.conv.*, .convtrans.*       fusion.downsample.*, fusion.upsample.*
cls_head.head.<i>.conv.*               cls_head.tower.convs.<i>.conv.*
cls_head.norm.<i>.*                    cls_head.tower.norms.<i>.*
cls_head.cls_head.conv.*               cls_head.classifier.conv.*
start_head.* / end_head.*              trident_head.start.* / trident_head.end.* (as cls_head)
reg_head.head/norm.<i>.*               trident_head.offset.tower.{convs,norms}.<i>.*
reg_head.scale.<l>.scale               trident_head.offset.scales.<l>.scale
reg_head.offset_head.conv.*            trident_head.offset.offset.conv.*
refineHead.head/norm.<i>.*             refine_head.tower.{convs,norms}.<i>.*
refineHead.prob_head.conv.*            refine_head.logits.conv.*
refineHead.s_offset_head.conv.*        refine_head.start_offset.conv.*
refineHead.e_offset_head.conv.*        refine_head.end_offset.conv.*
refineHead.scale.<l>.scale             dropped (built, never used by its forward)
=====================================  =============================================

``paper`` vs ``release`` (``model.variant``): what the public code computes where it differs
from the paper's equations (or where the paper is silent), found by reading it:

1. GMG gating (``pytal.ops.gmg``): release ``L = l*g; I = f*L; out = u + g + L + I``; paper
   ``L = relu(g)*l + g; I = relu(L)*f; out = u + L + I``. The release THUMOS config also uses a
   local kernel of 1 (``n_sgp_win_size: 1``; stem blocks always 1) and initialises the local and
   instant weights with std ``init_conv_vars = 0``, i.e. zeros; ``k`` is computed into a size the
   block never uses. Its block masks neither the mixer nor the MLP output.
2. Refined score: paper ``sqrt(a * R)`` of the two probabilities; release
   ``sigmoid(cls_logit * refine_logit)``, a product of *logits* (two negative logits give a high
   score, and at initialisation the classifier's prior bias is cancelled: scores start near 0.5).
   See ``refinement.refined_scores`` / ``refined_logits``.
3. Refined boundaries (both variants, as the release): per-class offsets of the RefineHead (raw,
   kernel 7, no Scale or ReLU) are added in input feature steps to the decoded boundaries, and
   the refined distances are clamped at 0 (``refinement.refine_offsets``).
4. Losses: release ``0.7 * refined + 0.3 * unrefined`` (``model.refined_loss_weight``), where
   refined = varifocal loss on ``cls_logit * refine_logit`` with 0/1 targets (so BCE on positives,
   ``alpha * p**gamma``-weighted BCE on negatives) whose positive entries are multiplied by
   ``IoU ** iou_weight_power`` (IoU of the *refined* decoded segment, not detached), plus DIoU on
   the refined distances; unrefined = sigmoid focal loss on the ClassificationHead's logits (no
   IoU weighting) plus DIoU on the unrefined Trident distances. Both halves update the EMA loss
   normaliser, so it advances twice per step. The paper describes the IoU-weighted varifocal and
   IoU regression losses but not the 0.7/0.3 mix.
5. Decoder masks: the release's DeCLS / DeReg / CrossLevel ignore masks; their global average
   pooling runs over padded steps, whose features are not zero (its neck LayerNorm and GMG
   blocks leave the padding unmasked), so outputs depend on how far a video is padded (it pads
   to ``max_seq_len`` at inference). ``masked=False`` reproduces that; pytal's default
   ``masked=True`` zeroes padding, pools over valid steps and is padding-invariant.
6. The attention ``W = Sigmoid(FC(GAP(ReLU(f_{l+1} + f_l))))`` has, in the release, a 1x1 conv
   on ``f_l`` (``attention.lateral``) that the paper's equation does not show; both variants keep it.
7. Trident head: only the centre-offset branch reads the Decoupled Regression Module's output;
   the start/end boundary branches read the plain pyramid ``P_l`` (detached) and are
   class-specific (Cb = num_classes). The RefineHead reads the fused ``f_c`` at every level,
   including the first and last (two-term sums there).
8. ActivityNet: the release config keeps 768 unresized steps and 6 levels
   (``cltdr_gmg_anet_tsp_release``); the paper's setting (192 resized steps, 7 levels) is
   ``cltdr_gmg_anet``. Packaged configs per benchmark: ``docs/benchmarks.md``.
"""
from __future__ import annotations

from .config import CLTDRGMGConfig
from .convert import convert_release_checkpoint, extract_release_state_dict
from .decoder import CrossLayerFusion, DecoupledClassification, DecoupledRegression
from .encoder import GMGEncoder, PyramidNorm, sinusoid_position_embedding
from .heads import OffsetHead, RefineHead, TridentHead
from .refinement import VARIANTS, refine_offsets, refined_logits, refined_scores
from .model import CLTDRGMG

__all__ = [
    "CLTDRGMG", "CLTDRGMGConfig", "GMGEncoder", "PyramidNorm", "sinusoid_position_embedding",
    "VARIANTS", "convert_release_checkpoint", "extract_release_state_dict", "CrossLayerFusion",
    "DecoupledClassification", "DecoupledRegression", "OffsetHead", "RefineHead", "TridentHead",
    "refine_offsets", "refined_logits", "refined_scores",
]

"""The assembled CLTDR-GMG detector, registered as ``"cltdr_gmg"``."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.data.batch import Batch
from pytal.models.cltdr_gmg.config import CLTDRGMGConfig
from pytal.models.cltdr_gmg.convert import convert_release_checkpoint, extract_release_state_dict
from pytal.models.cltdr_gmg.decoder import (CrossLayerFusion, DecoupledClassification,
                                            DecoupledRegression)
from pytal.models.cltdr_gmg.encoder import GMGEncoder, PyramidNorm
from pytal.models.cltdr_gmg.heads import ClassificationHead, RefineHead, TridentHead
from pytal.models.cltdr_gmg.refinement import refine_offsets, refined_logits, refined_scores
from pytal.models.common.assignment import assign_targets_batch
from pytal.models.common.inputs import check_feats_and_masks, check_targets
from pytal.models.common.decoding import (check_metadata, detections_in_seconds, drop_short,
                                          segments_from_offsets, select_candidates)
from pytal.models.common.losses import LossNormalizer, branch_losses, positive_entries
from pytal.models.common.points import POINT_STRIDE, POINT_T, PointGenerator, pyramid_strides
from pytal.models.registry import register_model
from pytal.nn.masked_conv import valid_extent
from pytal.ops import trident_decode

__all__ = ["CLTDRGMG"]


class _HeadOutputs:
    """Per-level outputs of the heads (lists over levels, channel-first)."""

    def __init__(self, cls, start, end, offset, refine, start_offset, end_offset):
        self.cls = cls                    # (B, C, T_l) classification logits
        self.start, self.end = start, end  # (B, C, T_l) Trident boundary logits
        self.offset = offset              # (B, T_l, 2, K) Trident centre-offset logits
        self.refine = refine              # (B, C, T_l) refinement logits
        self.start_offset = start_offset  # (B, C, T_l) boundary offsets, input feature steps
        self.end_offset = end_offset


@register_model("cltdr_gmg")
class CLTDRGMG(nn.Module):
    """CLTDR-GMG (Li et al., AAAI 2025): GMG encoder -> per-level LayerNorm neck -> CLTDR
    decoder (decoupled classification / regression, cross-layer fusion) -> classification,
    Trident and refinement heads.

    Build it with ``pytal.models.build_model(cfg)`` (or ``CLTDRGMG(cfg)``) from a typed config
    (``pytal.config.load_config("cltdr_gmg_thumos")``); ``model.variant`` picks ``"paper"``
    (the paper's equations, masked decoder) or ``"release"`` (what the authors' public code
    computes; its checkpoints load with ``convert_release_checkpoint``). See the package
    docstring for the differences.

    Shapes and units. B videos, C_in = ``dataset.input_dim`` channels, T feature steps,
    C = ``dataset.num_classes``. *Feature steps* are steps of the input feature grid (before
    any pyramid downsampling); *seconds* come from each video's metadata.

    Padding: the model pads every batch on the right to
    ``padded_length(T) = max(dataset.max_seq_len, T rounded up to scale_factor ** (L-1))``
    (L pyramid levels), as the public code does, so that a video's outputs do not depend on
    how far the caller padded it (while T <= max_seq_len). Padded steps (``masks`` False) are
    zeroed before the encoder; the caller may pad with anything. Only the GMG blocks (and the
    ``release`` decoder's attention pooling) see the whole padded length: the projection, the
    rest of the decoder and the heads run on the batch's valid extent plus their kernels'
    reach, with the same result. ``model.inference_padding: stride`` (inference only) pads to
    the stride multiple instead of ``max_seq_len``: faster on short videos, but outputs change
    (the GMG spectral filter and GroupNorm see another length, and with B > 1 a video's
    outputs depend on the longest video of its batch); ``docs/benchmarks.md`` gives its mAP.

    The protocol of :mod:`pytal.models.protocol`: ``model(batch)`` gives the training losses
    and ``model.predict(batch)`` the detections in seconds of a :class:`pytal.data.Batch`; both
    call the tensor-level methods below.

    Training (``model.train()``)::

        losses = model.losses(feats, masks, segments, labels)
        losses["loss"].backward()

    * ``feats``: (B, C_in, T) float; ``masks``: (B, 1, T) bool, True at valid steps.
    * ``segments``: list of B (N_i, 2) float tensors ``[start, end]`` in feature steps.
    * ``labels``: list of B tensors, (N_i,) int64 class ids in [0, C), or (N_i, C) 0/1
      multi-label rows (a segment with several classes).
    * returns a dict of scalar tensors: ``"loss"`` (to minimise) =
      ``w * refined + (1 - w) * coarse`` with ``w = model.refined_loss_weight``, and its parts
      ``"cls_loss"``, ``"reg_loss"`` (mixed the same way), ``"refined_loss"``, ``"coarse_loss"``.
      The losses are normalised by an EMA of the number of positive points
      (``model.loss_normalizer``, a plain attribute: save ``loss_normalizer.state_dict()``
      with the optimiser to resume training exactly).

    Inference (call ``model.eval()`` first: ``detect`` does not switch modes)::

        detections = model.detect(feats, masks, metadata)

    * ``metadata``: list of B dicts with ``"video_id"``, ``"fps"``, ``"duration"`` (seconds),
      ``"feat_stride"`` and ``"feat_num_frames"`` (frames); feature ``i`` is centred at
      ``(i * feat_stride + feat_num_frames / 2) / fps`` seconds.
    * returns a list of B dicts ``{"video_id", "segments" (M, 2) seconds clipped to
      [0, duration], "scores" (M,), "labels" (M,) int64}``, sorted by score, on the model's
      device. Per level: refined scores above ``eval.pre_nms_thresh``, at most
      ``eval.pre_nms_topk`` per video; Trident decoding (``pytal.ops.trident_decode``, index
      form) of those candidates only; boundary refinement; segments not longer than
      ``eval.duration_thresh`` feature steps dropped; then one ``pytal.postprocess.batched_nms``
      call for the whole batch (``pytal.models.common.decoding.detections_in_seconds``:
      ``eval.nms_method``, ``iou_threshold``, ``nms_sigma``,
      ``min_score``, ``multiclass_nms``, ``max_seg_num``, and ``voting_thresh``, which as in
      the public code only acts with class-agnostic NMS).

    ``model.forward_heads(feats, masks)`` exposes the raw per-level outputs (for tests and
    analysis).
    """

    #: The ``model.*`` keys (``pytal.config`` reads the model section into it).
    config_class = CLTDRGMGConfig

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        c, d = cfg.model, cfg.dataset
        if not isinstance(c, CLTDRGMGConfig):
            raise TypeError(f"CLTDRGMG: expected a typed config whose model section is a "
                            f"CLTDRGMGConfig, got {type(c).__name__}")
        self.config = c
        self.protocol = cfg.eval                 # inference settings (eval.*)
        self.variant = c.variant
        release = c.variant == "release"
        levels = c.num_levels
        self.strides = pyramid_strides(levels, c.scale_factor)
        self.total_stride = self.strides[-1]
        self.max_seq_len = d.max_seq_len
        self.num_classes = d.num_classes
        self.input_dim = d.input_dim
        self.input_noise = c.input_noise
        self.refined_loss_weight = c.refined_loss_weight
        self.inference_padding = c.inference_padding
        # padded steps beyond the valid extent that a head's kernels read from a valid step
        self.head_reach = max(c.head_kernel_size, c.boundary_kernel_size,
                              c.refine_offset_kernel_size) // 2
        self.points = PointGenerator(self.strides, c.regression_range)
        self.loss_normalizer = LossNormalizer(c.init_loss_norm, c.loss_norm_momentum)

        self.encoder = GMGEncoder(
            d.input_dim, c.embd_dim, c.backbone_arch, scale_factor=c.scale_factor,
            embd_kernel_size=c.embd_kernel_size, embd_with_ln=c.embd_with_ln,
            kernel_size=c.gmg_kernel_size, mlp_dim=c.mlp_dim,
            init_conv_vars=c.gmg_init_conv_vars, path_pdrop=c.droppath,
            downsample_type=c.downsample_type, gating=c.variant, use_abs_pe=c.use_abs_pe,
            max_len=d.max_seq_len)
        self.neck = PyramidNorm(c.embd_dim, levels, c.fpn_with_ln)
        masked = not release
        self.cls_decoupler = DecoupledClassification(c.embd_dim, masked=masked)
        self.reg_decoupler = DecoupledRegression(c.embd_dim, masked=masked)
        self.fusion = CrossLayerFusion(c.embd_dim, masked=masked)
        head = dict(num_layers=c.head_num_layers, kernel_size=c.head_kernel_size,
                    with_ln=c.head_with_ln)
        self.cls_head = ClassificationHead(c.embd_dim, c.head_dim, d.num_classes,
                                           prior_prob=c.cls_prior_prob,
                                           empty_cls=c.head_empty_cls, **head)
        self.trident_head = TridentHead(c.embd_dim, c.head_dim, levels, d.num_classes,
                                        c.num_bins, boundary_kernel_size=c.boundary_kernel_size,
                                        prior_prob=c.cls_prior_prob,
                                        empty_cls=c.head_empty_cls, **head)
        self.refine_head = RefineHead(c.embd_dim, c.head_dim, d.num_classes,
                                      offset_kernel_size=c.refine_offset_kernel_size, **head)

    # ------------------------------------------------------------------ shared forward
    def padded_length(self, length: int) -> int:
        """Length (feature steps) a batch of length T is padded to: a multiple of the total
        pyramid stride, and at least ``dataset.max_seq_len`` (in training, and in inference
        unless ``model.inference_padding`` is ``"stride"``)."""
        rounded = -(-length // self.total_stride) * self.total_stride
        if not self.training and self.inference_padding == "stride":
            return max(rounded, self.total_stride)
        return max(rounded, self.max_seq_len)

    def _prepare(self, feats: torch.Tensor, masks: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Check, zero the padding, pad to ``padded_length`` and add the training noise."""
        check_feats_and_masks("CLTDRGMG", feats, masks, self.input_dim)
        b, _, t = feats.shape
        pad = self.padded_length(t) - t
        feats = F.pad(feats.masked_fill(~masks, 0.0), (0, pad))     # padding may hold anything
        masks = F.pad(masks, (0, pad), value=False)
        if self.training and self.input_noise > 0:
            noise = torch.randn_like(feats) * self.input_noise
            # release: noise on every step (the projection convs read it at the borders)
            feats = feats + (noise if self.variant == "release" else noise * masks.to(feats.dtype))
        return feats, masks

    def forward_heads(self, feats: torch.Tensor, masks: torch.Tensor
                      ) -> tuple[_HeadOutputs, list[torch.Tensor], list[torch.Tensor]]:
        """Encoder, neck, decoder and heads on (B, C_in, T) ``feats`` and (B, 1, T) bool
        ``masks``. Returns ``(outputs, level_masks, points)``: the heads' per-level outputs,
        the (B, 1, n_l) masks and the (n_l, 4) points, where level ``l`` keeps its first
        ``n_l`` steps: every valid step and the padded steps the heads' kernels reach (all
        later steps of the padded pyramid are padding, where the heads output zeros)."""
        feats, masks = self._prepare(feats, masks)
        extent = valid_extent(masks)
        pyramid, level_masks = self.encoder(feats, masks, extent=extent)
        pyramid = self.neck(pyramid)
        lengths = [min(p.shape[-1], -(-extent // s) + self.head_reach)
                   for p, s in zip(pyramid, self.strides)]
        kept_masks = [m[..., :n] for m, n in zip(level_masks, lengths)]
        kept_pyramid = [p[..., :n] for p, n in zip(pyramid, lengths)]
        cls = self.cls_head(self.cls_decoupler(pyramid, level_masks, lengths), kept_masks)
        start, end, offset = self.trident_head(
            self.reg_decoupler(pyramid, level_masks, lengths), kept_masks,
            boundary_feats=kept_pyramid)
        refine, ds, de = self.refine_head(self.fusion(pyramid, level_masks, lengths), kept_masks)
        points = self.points(lengths, device=feats.device)
        return _HeadOutputs(cls, start, end, offset, refine, ds, de), kept_masks, points

    # ------------------------------------------------------------------ protocol
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Training losses of a :class:`~pytal.data.Batch` (see :meth:`losses`)."""
        if batch.segments is None or batch.labels is None:
            raise ValueError("CLTDRGMG: a training batch needs segments and labels")
        return self.losses(batch.feats, batch.masks, batch.segments, batch.labels)

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[dict[str, Any]]:
        """Detections in seconds per video of a :class:`~pytal.data.Batch` (see :meth:`detect`)."""
        return self.detect(batch.feats, batch.masks, batch.metadata)

    @classmethod
    def convert_state_dict(cls, checkpoint: Mapping[str, Any], weights: str = "ema"
                           ) -> Optional[dict[str, torch.Tensor]]:
        """pytal weights from a checkpoint of the authors' public code (``{"state_dict",
        "state_dict_ema", ...}``; ``weights``: ``"ema"`` first, or ``"raw"``); None for any
        other checkpoint."""
        if "state_dict" not in checkpoint and "state_dict_ema" not in checkpoint:
            return None
        return convert_release_checkpoint(extract_release_state_dict(checkpoint, weights))

    # ------------------------------------------------------------------ training
    def losses(self, feats: torch.Tensor, masks: torch.Tensor,
               segments: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        """Training losses; see the class docstring for shapes and units."""
        out, level_masks, points = self.forward_heads(feats, masks)
        segments, labels = check_targets("CLTDRGMG", segments, labels, feats.shape[0],
                                          self.num_classes, feats.device, multi_label=True)
        c = self.config
        cls_t, reg_t = assign_targets_batch(points, segments, labels, self.num_classes,
                                            center_sample=c.center_sample,
                                            center_sample_radius=c.center_sample_radius)
        valid = torch.cat([m[:, 0] for m in level_masks], dim=1)          # (B, N)
        b, n, k = positive_entries(cls_t, valid)
        num_pos = int(((cls_t.sum(-1) > 0) & valid).sum())
        concat = torch.cat(points)                                         # (N, 4)
        coarse = self._decode_entries(out, points, b, n, k)                # (P, 2) strides
        refined = refine_offsets(coarse, torch.cat(out.start_offset, -1)[b, k, n],
                                 torch.cat(out.end_offset, -1)[b, k, n], concat[n, POINT_STRIDE])
        cls_all = torch.cat(out.cls, -1).transpose(1, 2)                   # (B, N, C)
        ref_all = torch.cat(out.refine, -1).transpose(1, 2)
        common = dict(reg_loss=c.reg_loss, label_smoothing=c.label_smoothing,
                      loss_weight=c.loss_weight)
        norm = self.loss_normalizer.update(num_pos)
        ref = branch_losses(refined_logits(cls_all, ref_all, self.variant), refined, cls_t, reg_t,
                            valid, norm, cls_loss=c.cls_loss,
                            iou_weight_power=c.iou_weight_power, **common)
        if self.variant == "release":          # the public code advances the EMA twice a step
            norm = self.loss_normalizer.update(num_pos)
        crs = branch_losses(cls_all, coarse, cls_t, reg_t, valid, norm, cls_loss="focal",
                            **common)
        w = self.refined_loss_weight
        mix = {key: w * ref[key] + (1 - w) * crs[key] for key in ("cls_loss", "reg_loss", "final_loss")}
        return {"loss": mix["final_loss"], "cls_loss": mix["cls_loss"],
                "reg_loss": mix["reg_loss"], "refined_loss": ref["final_loss"],
                "coarse_loss": crs["final_loss"]}

    def _decode_entries(self, out: _HeadOutputs, points: Sequence[torch.Tensor],
                        b: torch.Tensor, n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Trident distances (P, 2), in strides, of the (video b, point n, class k) entries
        (n indexes the concatenated levels), keeping their order; one index-form
        ``trident_decode`` call per level."""
        result = out.start[0].new_zeros((b.numel(), 2))
        first = 0
        for level, pts in enumerate(points):
            sel = ((n >= first) & (n < first + pts.shape[0])).nonzero(as_tuple=True)[0]
            if sel.numel():
                dist = trident_decode(out.start[level], out.end[level], out.offset[level],
                                      index=(b[sel], k[sel], n[sel] - first))
                result = result.index_copy(0, sel, dist.to(result.dtype))
            first += pts.shape[0]
        return result

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def detect(self, feats: torch.Tensor, masks: torch.Tensor,
               metadata: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Detections in seconds per video; see the class docstring."""
        check_metadata(metadata, feats.shape[0] if isinstance(feats, torch.Tensor) else -1,
                       "CLTDRGMG.detect")
        out, level_masks, points = self.forward_heads(feats, masks)
        e = self.protocol
        segs, scores, labels, videos = [], [], [], []
        for level, pts in enumerate(points):
            prob = refined_scores(out.cls[level], out.refine[level], self.variant)
            b, t, k, score = select_candidates(prob.transpose(1, 2), level_masks[level][:, 0],
                                               threshold=e.pre_nms_thresh, topk=e.pre_nms_topk)
            dist = trident_decode(out.start[level], out.end[level], out.offset[level],
                                  index=(b, k, t))
            stride = pts[t, POINT_STRIDE]
            dist = refine_offsets(dist, out.start_offset[level][b, k, t],
                                  out.end_offset[level][b, k, t], stride)
            seg = segments_from_offsets(pts[t, POINT_T], dist.to(pts.dtype), stride)
            keep = drop_short(seg, e.duration_thresh)
            segs.append(seg[keep])
            scores.append(score[keep].to(seg.dtype))
            labels.append(k[keep])
            videos.append(b[keep])
        segs, scores, labels, videos = (torch.cat(x) for x in (segs, scores, labels, videos))
        return detections_in_seconds(segs, scores, labels, videos, metadata, e)

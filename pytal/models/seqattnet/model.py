"""The assembled SeqAttNet detector, registered as ``"seqattnet"``."""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pytal.data.batch import Batch
from pytal.models.common import check_metadata, detections_in_seconds, feature_steps_to_seconds
from pytal.models.common.inputs import check_feats_and_masks, check_targets
from pytal.models.registry import register_model
from pytal.models.seqattnet.amassment import amass_groups
from pytal.models.seqattnet.boundary_matching import proposal_valid_mask
from pytal.models.seqattnet.config import SeqAttNetConfig
from pytal.models.seqattnet.inference import select_proposals
from pytal.models.seqattnet.labels import (boundary_labels, error_targets, iou_map,
                                           map_proposals, segment_iou)
from pytal.models.seqattnet.losses import (l2_penalty, masked_mse, nll,
                                           weighted_logistic_loss)
from pytal.models.seqattnet.modules import (BaseModule, ProposalEvaluation, SequentialHead,
                                            TemporalEvaluation)
from pytal.postprocess import batched_nms

__all__ = ["SeqAttNet"]


@register_model("seqattnet")
class SeqAttNet(nn.Module):
    """SeqAttNet (Mokari and Haj Sadeghi): BMN-style proposal generation, 3D input
    amassment, temporal attention and two-dimensional sequential networks for boundary
    error estimation and classification.

    Build it with ``pytal.models.build_model(cfg)`` from a typed config
    (``pytal.config.load_config("seqattnet_anet")``). T = ``dataset.max_seq_len`` (100 for
    ActivityNet: the dataset resizes every video to T steps, ``dataset.force_upsampling``),
    F = ``dataset.input_dim``, C = ``dataset.num_classes``, D = ``model.max_duration``,
    T_p = ``model.amassment_length``. Segments are in feature steps inside the model and in
    seconds in ``predict``'s output.

    Training (``model.train()``): ``losses = model(batch)`` on a :class:`pytal.data.Batch`
    with ``feats`` (B, F, T), ``masks`` (B, 1, T) all True (every video has T steps),
    ``segments`` (B tensors (N_i, 2) in steps) and ``labels`` (B tensors (N_i,) class ids).
    Returns ``"loss"`` = ``pe_loss + lambda_te te_loss + lambda_cl cls_loss + lambda_er
    err_loss + lambda_2 l2_loss`` and those parts. The classifier is trained on the
    ground-truth segments; the error estimator on up to ``model.error_proposals`` map
    proposals per video with an IoU of at least ``model.error_iou`` with a ground truth
    (drawn with torch's global generator), against the best-matching one.

    Inference (``model.eval()``): ``model.predict(batch)`` with ``batch.metadata`` (B dicts
    with ``video_id``, ``fps``, ``duration``, ``feat_stride``, ``feat_num_frames`` of the grid
    of ``feats``). Videos of another length than T (or with padding) are resized to T inside
    (linear interpolation) and their results mapped back to their own grid. Returns B dicts
    ``{"video_id", "segments" (M, 2) seconds in [0, duration], "scores" (M,), "labels" (M,),
    "proposals" (K, 2) seconds, "proposal_scores" (K,)}``: candidates
    (:mod:`~pytal.models.seqattnet.inference`), boundaries corrected by the estimated errors
    (``start + delta_s * T``), the ``model.classes_per_proposal`` best classes each with
    ``S = P * Cscore``, one ``pytal.postprocess.batched_nms`` call for the batch with the
    ``eval.*`` settings. ``proposals`` are the corrected candidates scored by P after
    class-agnostic NMS (same method), at most ``model.max_proposals`` per video: the
    proposal stage alone, for :mod:`pytal.evaluation.proposals`.
    """

    #: The ``model.*`` keys (``pytal.config`` reads the section into it).
    config_class = SeqAttNetConfig

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        c, d = cfg.model, cfg.dataset
        self.config, self.protocol = c, cfg.eval             # eval.*: NMS settings
        self.num_classes, self.input_dim = d.num_classes, d.input_dim
        self.temporal_scale = T = d.max_seq_len
        self.duration_bins = c.duration_bins(T)
        self.proposal_length = c.proposal_length(T)
        self.base = BaseModule(d.input_dim, c.base_dim)
        self.temporal_evaluation = TemporalEvaluation(c.base_dim)
        self.proposal_evaluation = ProposalEvaluation(
            c.base_dim, T, self.duration_bins, c.num_samples, c.samples_per_bin,
            c.boundary_ratio, c.hidden_3d, c.hidden_2d)
        feat_dim = d.input_dim if c.amassment_features == "input" else c.base_dim
        self.error_estimation = SequentialHead(self.proposal_length, feat_dim, 2, "tanh")
        self.classification = SequentialHead(self.proposal_length, feat_dim, d.num_classes,
                                             "log_softmax")
        self.register_buffer("valid_map", proposal_valid_mask(T, self.duration_bins),
                             persistent=False)

    # ------------------------------------------------------------------ shared forward
    def forward_maps(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(base (B, C_b, T), boundaries (B, 2, T) [P_S, P_E], maps (B, 2, D, T)
        [M_CR, M_CC])`` of (B, F, T) features."""
        base = self.base(feats)
        return base, self.temporal_evaluation(base), self.proposal_evaluation(base)

    def run_heads(self, feats: torch.Tensor, base: torch.Tensor, video: torch.Tensor,
                  proposals: torch.Tensor, heads: Sequence[SequentialHead]
                  ) -> list[torch.Tensor]:
        """Each head's output (P, out_dim) on the 3D input of (P, 2) proposals in steps of
        videos ``video`` (P,), computed by groups of similar length
        (:func:`~pytal.models.seqattnet.amassment.amass_groups`)."""
        source = feats if self.config.amassment_features == "input" else base
        index, parts = [], [[] for _ in heads]
        for rows, x, valid in amass_groups(source, video, proposals, self.proposal_length):
            index.append(rows)
            for part, head in zip(parts, heads):
                part.append(head(x, valid))
        if not index:
            return [source.new_zeros((0, head.content.out_features)) for head in heads]
        order = torch.cat(index)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return [torch.cat(part)[inverse] for part in parts]

    def _check_input(self, feats: torch.Tensor, masks: torch.Tensor) -> None:
        check_feats_and_masks("SeqAttNet", feats, masks, self.input_dim)

    # ------------------------------------------------------------------ training
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Training losses; see the class docstring for shapes and units."""
        feats, masks = batch.feats, batch.masks
        if batch.segments is None or batch.labels is None:
            raise ValueError("SeqAttNet: training needs batch.segments and batch.labels")
        self._check_input(feats, masks)
        c, T, D = self.config, self.temporal_scale, self.duration_bins
        if feats.shape[2] != T or not bool(masks.all()):
            raise ValueError(f"SeqAttNet: training videos must all have T = {T} valid steps "
                             f"(dataset.max_seq_len with dataset.force_upsampling: true), got "
                             f"{feats.shape[2]} steps with {int((~masks).sum())} padded")
        segments, labels = check_targets("SeqAttNet", batch.segments, batch.labels,
                                          feats.shape[0], self.num_classes, feats.device)
        base, boundaries, maps = self.forward_maps(feats)

        g_start, g_end, g_map = [], [], []
        for seg in segments:
            gs, ge = boundary_labels(seg, T)
            g_start.append(gs)
            g_end.append(ge)
            g_map.append(iou_map(seg, T, D))
        g_start, g_end, g_map = torch.stack(g_start), torch.stack(g_end), torch.stack(g_map)
        theta = c.label_threshold
        te_loss = (weighted_logistic_loss(boundaries[:, 0], g_start, theta)
                   + weighted_logistic_loss(boundaries[:, 1], g_end, theta))
        valid = self.valid_map[None].expand_as(g_map)
        pe_loss = (weighted_logistic_loss(maps[:, 1], g_map, theta, valid)
                   + c.lambda_reg * masked_mse(maps[:, 0], g_map, valid))

        video = torch.cat([torch.full((len(s),), i, dtype=torch.long, device=feats.device)
                           for i, s in enumerate(segments)])
        cls_logp, = self.run_heads(feats, base, video, torch.cat(segments),
                                   [self.classification])
        cls_loss = nll(cls_logp, torch.cat(labels))

        err_video, err_props, err_target = self._error_samples(segments)
        if err_video.numel():
            errors, = self.run_heads(feats, base, err_video, err_props, [self.error_estimation])
            err_loss = F.mse_loss(errors, err_target)
        else:
            err_loss = feats.new_zeros(())
        l2_loss = l2_penalty(self.parameters())
        loss = (pe_loss + c.lambda_te * te_loss + c.lambda_cl * cls_loss
                + c.lambda_er * err_loss + c.lambda_l2 * l2_loss)
        return {"loss": loss, "pe_loss": pe_loss, "te_loss": te_loss, "cls_loss": cls_loss,
                "err_loss": err_loss, "l2_loss": l2_loss}

    def _error_samples(self, segments: Sequence[torch.Tensor]
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(video (P,), proposals (P, 2), targets (P, 2))``: per video, up to
        ``model.error_proposals`` random valid map proposals with IoU >= ``model.error_iou``
        with a ground truth, and ``(ds, de)`` to the best-matching one."""
        c, T, D = self.config, self.temporal_scale, self.duration_bins
        device = self.valid_map.device
        props = map_proposals(T, D, device=device)[self.valid_map]         # (M, 2)
        videos, chosen, targets = [], [], []
        for i, seg in enumerate(segments):
            if seg.numel() == 0:
                continue
            best, match = segment_iou(props, seg).max(dim=1)
            index = (best >= c.error_iou).nonzero(as_tuple=True)[0]
            index = index[torch.randperm(index.numel(), device=device)[:c.error_proposals]]
            videos.append(torch.full((index.numel(),), i, dtype=torch.long, device=device))
            chosen.append(props[index])
            targets.append(error_targets(props[index], seg[match[index]], T))
        if not videos:
            empty = props.new_zeros((0, 2))
            return torch.zeros(0, dtype=torch.long, device=device), empty, empty
        return torch.cat(videos), torch.cat(chosen), torch.cat(targets)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, batch: Batch) -> list[dict[str, Any]]:
        """Detections and proposals in seconds per video; see the class docstring."""
        feats, masks, metadata = batch.feats, batch.masks, batch.metadata
        self._check_input(feats, masks)
        check_metadata(metadata, feats.shape[0], "SeqAttNet.predict")
        c, e, T = self.config, self.protocol, self.temporal_scale
        feats, scale = self._resized(feats, masks)
        base, boundaries, maps = self.forward_maps(feats)
        video, props, p = select_proposals(boundaries, maps, self.valid_map,
                                           peak_ratio=c.peak_ratio,
                                           max_candidates=c.max_candidates)
        errors, cls_logp = self.run_heads(feats, base, video, props,
                                          [self.error_estimation, self.classification])
        corrected = (props + errors * T).sort(dim=1).values
        corrected = corrected.clamp(-0.5, T - 0.5)
        # back to each video's own grid (resizing with align_corners=False)
        corrected = (corrected + 0.5) * scale[video, None] - 0.5
        cscore, label = cls_logp.exp().topk(
            min(c.classes_per_proposal, self.num_classes), dim=1)
        k = label.shape[1]
        results = detections_in_seconds(
            corrected.repeat_interleave(k, dim=0), (p[:, None] * cscore).flatten(),
            label.flatten(), video.repeat_interleave(k), metadata, e)
        prop_segs, prop_scores, prop_videos = corrected, p, video
        if e.nms is not None:
            prop_segs, prop_scores, _, prop_videos = batched_nms(
                corrected, p, torch.zeros_like(video), video, iou_threshold=e.iou_threshold,
                sigma=e.nms_sigma, min_score=0.0, method=e.nms, multiclass=False,
                max_seg_num=c.max_proposals)
        for v, (meta, result) in enumerate(zip(metadata, results)):
            sel = prop_videos == v
            order = prop_scores[sel].argsort(descending=True)[:c.max_proposals]
            result["proposals"] = feature_steps_to_seconds(
                prop_segs[sel][order], fps=float(meta["fps"]),
                feat_stride=float(meta["feat_stride"]),
                num_frames=float(meta["feat_num_frames"]), duration=float(meta["duration"]))
            result["proposal_scores"] = prop_scores[sel][order]
        return results

    def _resized(self, feats: torch.Tensor, masks: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every video's valid steps resized to T: ``(feats (B, F, T), scale (B,))`` with
        ``scale = own length / T`` (1 where nothing changed)."""
        T = self.temporal_scale
        lengths = masks[:, 0].sum(dim=1)
        if feats.shape[2] == T and bool((lengths == T).all()):
            return feats, feats.new_ones(feats.shape[0])
        if bool((lengths == 0).any()):
            raise ValueError("SeqAttNet.predict: a video has no valid step (masks all False)")
        out = torch.stack([F.interpolate(f[None, :, :int(n)], size=T, mode="linear",
                                         align_corners=False)[0]
                           for f, n in zip(feats, lengths)])
        return out, lengths.to(feats.dtype) / T


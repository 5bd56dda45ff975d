"""TAL-MTS (Gao et al., "Temporal Action Localization with Multi-temporal Scales"): an
anchor-free coarse-to-fine detector on frame clips (AFSD's design) with refined feature
pyramids (RFP), a spatial-temporal transformer (STT) and frame-level self attention (FSA).

Input (``batch.feats`` (B, D, T_in)):

* frame backbones (``small3d``, ``i3d``): one step per frame, D = sum over streams of
  K * S * S (RGB K = 3, then flow K = 2), each step a frame flattened in (k, y, x) order,
  pixel values in [0, 255];
* ``features``: one step per 8 frames, per stream the rows of
  :func:`~pytal.backbones.feature_maps.pack_feature_maps`, streams concatenated.

Internally every length is in frames; a clip has ``clip_length`` frames and level l has
``clip_length / 4 / 2**l`` positions at ``(i + 0.5) * stride_l`` frames (AFSD's priors).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models.common import (assign_targets_batch, detections_in_seconds, prior_bias,
                                 select_candidates)
from pytal.models.registry import register_model
from pytal.models.talmts.backbones import FeatureMapsBackbone, I3dBackbone, Small3dBackbone
from pytal.models.talmts.config import STREAM_CHANNELS, TALMTSConfig
from pytal.models.talmts.losses import talmts_losses
from pytal.models.talmts.neck import (NUM_LEVELS, FrameSelfAttention, Pyramid,
                                      SpatialTemporalTransformer, frame_level_feature,
                                      refine_pyramid)
from pytal.models.talmts.refinement import RefinementHead
from pytal.nn import Float32Conv1d

__all__ = ["TALMTS", "TALMTSStream", "level_strides"]


def level_strides() -> list[int]:
    """Frames per position of the six levels: 4, 8, ..., 128."""
    return [4 * 2 ** level for level in range(NUM_LEVELS)]


class TALMTSStream(nn.Module):
    """One stream (RGB or flow): its inputs -> coarse and refined outputs for the K positions
    of all levels of a clip (see :meth:`forward`)."""

    def __init__(self, m: TALMTSConfig, in_channels: int, weights: str | None, num_classes: int):
        super().__init__()
        self.m = m
        if m.backbone == "small3d":
            self.backbone = Small3dBackbone(in_channels, m.map_channels, m.small3d_width)
        elif m.backbone == "i3d":
            if weights is None and not m.i3d_random:
                raise ValueError("model.i3d_rgb_weights / i3d_flow_weights must name the I3D "
                                 "weights of each stream (or set model.i3d_random: true)")
            self.backbone = I3dBackbone(in_channels, None if m.i3d_random else weights)
        else:
            self.backbone = FeatureMapsBackbone(m.map_channels, m.map_sizes)
        s4, _ = m.map_sizes
        self.pyramid = Pyramid(m.map_channels, m.map_sizes, m.channels)
        self.stt = (SpatialTemporalTransformer(m.map_channels[0], s4 * s4, m.clip_length // 4,
                                               m.stt_dim, m.stt_heads, m.stt_layers, m.channels)
                    if m.stt else None)
        self.fsa = (FrameSelfAttention(in_channels, m.frame_size, m.fsa_patch, m.fsa_dim,
                                       m.fsa_heads, m.fsa_layers) if m.fsa else None)
        c = m.channels
        self.to_loc = nn.Sequential(nn.Conv1d(c, c, 3, padding=1), nn.ReLU(inplace=True))
        self.to_cls = nn.Sequential(nn.Conv1d(2 * c if m.stt else c, c, 3, padding=1),
                                    nn.ReLU(inplace=True))
        self.loc_head = Float32Conv1d(c, 2, 3, padding=1)          # float32 under autocast
        self.cls_head = Float32Conv1d(c, num_classes, 3, padding=1)
        nn.init.constant_(self.cls_head.bias, prior_bias(m.cls_prior_prob))
        self.scales = nn.Parameter(torch.ones(NUM_LEVELS))
        self.refine = RefinementHead(c, c + (m.fsa_dim if m.fsa else 0), m.refine_dim,
                                     num_classes, prior_bias(m.cls_prior_prob))

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``inputs``: frames (B, K, T, S, S) in [-1, 1], or packed maps (B, D, T/8).

        Returns (K = sum of the level lengths): ``cls`` (B, K, C) coarse logits,
        ``distances`` (B, K, 2) to start and end in frames, ``offsets`` (B, K, 2) refined
        offsets (half proposal lengths), ``refined_cls`` (B, K, C) logits, ``quality`` (B, K)
        logits."""
        m4, m5 = self.backbone(inputs)
        f = refine_pyramid(self.pyramid(m4, m5))
        f_mts = f if self.stt is None else [torch.cat(p, 1) for p in zip(f, self.stt(m4))]
        f_loc = [self.to_loc(x) for x in f]
        f_cls = [self.to_cls(x) for x in f_mts]
        frames = self.m.clip_length
        f_a = frame_level_feature(f[0], frames)
        if self.fsa is not None:
            f_a = torch.cat((f_a, self.fsa(inputs)), dim=1)
        strides = level_strides()
        distances, proposals, logits = [], [], []
        for level, (loc, cls, stride) in enumerate(zip(f_loc, f_cls, strides)):
            dist = F.softplus(self.scales[level] * self.loc_head(loc)).transpose(1, 2) * stride
            pos = (torch.arange(loc.shape[-1], device=loc.device, dtype=dist.dtype) + 0.5) \
                * stride
            distances.append(dist)
            proposals.append(torch.stack((pos - dist[..., 0], pos + dist[..., 1]), dim=-1))
            logits.append(self.cls_head(cls).transpose(1, 2))
        offsets, refined_cls, quality = self.refine(f_loc, f_cls, f_a, proposals, strides)
        return {"cls": torch.cat(logits, 1), "distances": torch.cat(distances, 1),
                "offsets": offsets, "refined_cls": refined_cls, "quality": quality}


@register_model("talmts")
class TALMTS(nn.Module):
    """TAL-MTS: one :class:`TALMTSStream` per configured stream, losses summed over streams in
    training, outputs averaged (late fusion) at inference."""

    config_class = TALMTSConfig

    def __init__(self, cfg: Any):
        super().__init__()
        m, d = cfg.model, cfg.dataset
        self.m, self.protocol, self.num_classes = m, cfg.eval, d.num_classes
        weights = {"rgb": m.i3d_rgb_weights, "flow": m.i3d_flow_weights}
        self.streams = nn.ModuleDict(
            (s, TALMTSStream(m, STREAM_CHANNELS[s], weights[s], d.num_classes))
            for s in m.streams)
        strides = level_strides()
        lengths = [m.clip_length // s for s in strides]
        self.register_buffer("strides", torch.cat(
            [torch.full((n,), float(s)) for n, s in zip(lengths, strides)]), persistent=False)
        self.register_buffer("positions", torch.cat(
            [(torch.arange(n) + 0.5) * s for n, s in zip(lengths, strides)]),
            persistent=False)

    # ------------------------------------------------------------------ inputs
    @property
    def clip_steps(self) -> int:
        """Input steps per clip."""
        return self.m.clip_length // self.m.frames_per_step

    def _stream_inputs(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D, clip_steps) -> per stream: frames (B, K, T, S, S) in [-1, 1] or packed maps."""
        out, start = {}, 0
        batch, _, steps = feats.shape
        size = self.m.frame_size
        for s in self.m.streams:
            if self.m.backbone == "features":
                width = feats.shape[1] // len(self.m.streams)
                out[s] = feats[:, start:start + width]
            else:
                k = STREAM_CHANNELS[s]
                width = k * size * size
                x = feats[:, start:start + width].reshape(batch, k, size, size, steps)
                out[s] = x.permute(0, 1, 4, 2, 3) / 127.5 - 1.0
            start += width
        return out

    def _pad(self, feats: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps = feats.shape[-1]
        if steps > self.clip_steps:
            raise ValueError(f"TALMTS: clips hold at most {self.clip_steps} input steps "
                             f"(model.clip_length / {self.m.frames_per_step}), got {steps}; "
                             "set dataset.max_seq_len accordingly")
        pad = self.clip_steps - steps
        feats = F.pad(feats * masks.to(feats.dtype), (0, pad))
        return feats, F.pad(masks, (0, pad))

    def _valid_positions(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, 1, clip_steps) -> (B, K) positions inside the real frames."""
        frames = masks[:, 0].sum(-1) * self.m.frames_per_step
        return self.positions[None] < frames[:, None].to(self.positions.dtype)

    # ------------------------------------------------------------------ training
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        feats, masks = self._pad(batch.feats, batch.masks)
        valid = self._valid_positions(masks)
        points = torch.stack((self.positions, torch.zeros_like(self.positions),
                              torch.full_like(self.positions, 1e8), self.strides), dim=1)
        gt = [s.to(self.positions.dtype) * self.m.frames_per_step for s in batch.segments]
        cls_t, reg_t = assign_targets_batch(points, gt, batch.labels, self.num_classes,
                                            center_sample="none")
        total: dict[str, torch.Tensor] = {}
        for name, inputs in self._stream_inputs(feats).items():
            out = self.streams[name](inputs)
            terms = talmts_losses(
                cls_logits=out["cls"], distances=out["distances"], positions=self.positions,
                strides=self.strides, valid=valid, cls_targets=cls_t, reg_targets=reg_t,
                refined_offsets=out["offsets"], refined_logits=out["refined_cls"],
                quality=out["quality"], alpha=self.m.alpha, beta=self.m.beta,
                refine_iou=self.m.refine_iou, focal_alpha=self.m.focal_alpha,
                focal_gamma=self.m.focal_gamma)
            for key, value in terms.items():
                total[key] = total[key] + value if key in total else value
        return total

    # ------------------------------------------------------------------ inference
    def clip_detections(self, feats: torch.Tensor, masks: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Candidates of clips (B, D, <= clip_steps): per eq. 13 (``model.detections:
        refined``) or the coarse predictions alone. Returns ``(clip, segments (N, 2) in input
        steps of the clip, scores, labels)``."""
        feats, masks = self._pad(feats, masks)
        outs = [self.streams[n](x) for n, x in self._stream_inputs(feats).items()]
        mean = (lambda f: torch.stack([f(o) for o in outs]).mean(0))
        dist = mean(lambda o: o["distances"])
        coarse_p = mean(lambda o: o["cls"].sigmoid())
        start = self.positions[None] - dist[..., 0]
        end = self.positions[None] + dist[..., 1]
        if self.m.detections == "refined":
            offsets = mean(lambda o: o["offsets"])
            length = end - start
            start, end = start + 0.5 * length * offsets[..., 0], end + 0.5 * length * offsets[..., 1]
            scores = 0.5 * (coarse_p + mean(lambda o: o["refined_cls"].sigmoid())) \
                * mean(lambda o: o["quality"].sigmoid())[..., None]
        else:
            scores = coarse_p
        e = self.protocol
        b, k, c, score = select_candidates(scores, self._valid_positions(masks),
                                           threshold=e.pre_nms_thresh, topk=e.pre_nms_topk)
        segments = torch.stack((start[b, k], end[b, k]), dim=-1) / self.m.frames_per_step
        return b, segments, score, c

    @torch.no_grad()
    def predict(self, batch: Any) -> list[dict[str, Any]]:
        """Sliding windows of ``clip_length`` frames overlapping by ``test_overlap`` over each
        video, candidates shifted to video steps and merged, then one Soft-NMS per video."""
        lengths = batch.masks[:, 0].sum(-1).tolist()
        step = (self.m.clip_length - self.m.test_overlap) // self.m.frames_per_step
        windows = [(v, start) for v, n in enumerate(lengths)
                   for start in window_starts(int(n), self.clip_steps, step)]
        segs, scores, labels, videos = [], [], [], []
        chunk = 8
        for i in range(0, len(windows), chunk):
            part = windows[i:i + chunk]
            feats = torch.stack([clip_of(batch.feats[v], s, self.clip_steps) for v, s in part])
            masks = torch.stack([clip_of(batch.masks[v], s, self.clip_steps) for v, s in part])
            b, seg, score, label = self.clip_detections(feats, masks)
            offset = torch.tensor([float(s) for _, s in part], device=seg.device)
            video = torch.tensor([v for v, _ in part], device=seg.device)
            limit = torch.tensor([float(lengths[v]) for v, _ in part], device=seg.device)
            seg = (seg + offset[b, None]).clamp(min=0.0)
            seg = torch.minimum(seg, limit[b, None])
            keep = (seg[:, 1] - seg[:, 0]) > self.protocol.duration_thresh
            segs.append(seg[keep]); scores.append(score[keep])
            labels.append(label[keep]); videos.append(video[b][keep])
        device = batch.feats.device
        cat = (lambda xs, shape, dtype: torch.cat(xs) if xs else torch.zeros(shape, dtype=dtype,
                                                                               device=device))
        return detections_in_seconds(cat(segs, (0, 2), torch.float32),
                                     cat(scores, (0,), torch.float32),
                                     cat(labels, (0,), torch.long), cat(videos, (0,), torch.long),
                                     batch.metadata, self.protocol)


def window_starts(length: int, window: int, step: int) -> list[int]:
    """Start steps of the windows of ``window`` steps, ``step`` apart, that cover ``length``
    steps (the last one may extend past the end)."""
    if length <= window:
        return [0]
    count = math.ceil((length - window) / step) + 1
    return [i * step for i in range(count)]


def clip_of(x: torch.Tensor, start: int, window: int) -> torch.Tensor:
    """``x[..., start:start + window]`` of a (C, T) tensor, zero-padded to ``window`` steps."""
    part = x[..., start:start + window]
    return F.pad(part, (0, window - part.shape[-1]))

"""A stand-in detector registered from outside pytal (the protocol tests import it; it is also
the example of docs/models.md): a masked conv tower, a classification head and (left, right)
distances at every feature step; label assignment, losses, candidate selection, NMS and the
conversion to seconds come from pytal.models.common."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pytal.models import ModelConfig, register_model
from pytal.models.common import (ClassificationHead, ConvTower, PointGenerator,
                                 assign_targets_batch, ctr_diou_loss_1d, detections_in_seconds,
                                 segments_from_offsets, select_candidates, sigmoid_focal_loss)


@dataclass(frozen=True)
class StandInConfig(ModelConfig):
    """``model.*`` keys of the stand-in: ``hidden`` channels, centre-sampling radius."""

    hidden: int = 16
    center_sample_radius: float = 1.5


@register_model("stand_in")
class StandInDetector(nn.Module):
    config_class = StandInConfig

    def __init__(self, cfg) -> None:
        super().__init__()
        m, d = cfg.model, cfg.dataset
        self.protocol = cfg.eval
        self.num_classes = d.num_classes
        self.radius = m.center_sample_radius
        self.tower = ConvTower(d.input_dim, m.hidden, num_convs=1)
        self.cls_head = ClassificationHead(m.hidden, m.hidden, d.num_classes, num_layers=1)
        self.reg_head = nn.Conv1d(m.hidden, 2, 3, padding=1)
        self.points = PointGenerator([1], [(0.0, 1e4)])          # one level, stride 1

    def _heads(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) class logits and (B, T, 2) distances in feature steps."""
        h = self.tower(batch.feats, batch.masks)
        logits = self.cls_head([h], [batch.masks])[0].transpose(1, 2)
        return logits, F.relu(self.reg_head(h)).transpose(1, 2)

    def forward(self, batch) -> dict[str, torch.Tensor]:
        logits, dist = self._heads(batch)
        points = self.points([batch.feats.shape[-1]], device=batch.feats.device)
        cls_t, reg_t = assign_targets_batch(points, batch.segments, batch.labels,
                                            self.num_classes, center_sample="radius",
                                            center_sample_radius=self.radius)
        valid = batch.masks[:, 0]
        positive = (cls_t.sum(-1) > 0) & valid
        norm = max(int(positive.sum()), 1)
        cls_loss = sigmoid_focal_loss(logits[valid], cls_t[valid].to(logits.dtype),
                                      reduction="sum") / norm
        reg_loss = ctr_diou_loss_1d(dist[positive], reg_t[positive], reduction="sum") / norm
        return {"loss": cls_loss + reg_loss, "cls_loss": cls_loss, "reg_loss": reg_loss}

    @torch.no_grad()
    def predict(self, batch) -> list[dict]:
        logits, dist = self._heads(batch)
        e = self.protocol
        b, t, c, score = select_candidates(logits.sigmoid(), batch.masks[:, 0],
                                           threshold=e.pre_nms_thresh, topk=e.pre_nms_topk)
        segments = segments_from_offsets(t.to(dist.dtype), dist[b, t], torch.ones_like(score))
        return detections_in_seconds(segments, score, c, b, batch.metadata, e)

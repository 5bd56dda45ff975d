"""What the engine, the CLI and the benchmarks need from a detector, and nothing more.

A detector is an ``nn.Module`` class registered with :func:`pytal.models.register_model` that
has:

* ``config_class``: a frozen dataclass, subclass of :class:`ModelConfig`, holding every
  ``model.*`` key the detector reads with its type and default (``pytal.config`` reads the
  ``model`` section into it; unknown keys and wrong types are errors). It may define
  ``check(cfg)`` for rules across sections (raise :class:`pytal.config.ConfigError`-compatible
  ``ValueError`` naming the key).
* ``__init__(cfg)``: built from the whole typed :class:`pytal.config.Config` (``cfg.model`` is
  an instance of ``config_class``; ``cfg.dataset`` gives ``input_dim``, ``num_classes``,
  ``max_seq_len``; ``cfg.eval`` the inference settings).
* ``forward(batch) -> dict[str, Tensor]``: training losses of a :class:`pytal.data.Batch`
  (segments in feature steps); ``"loss"`` is what the engine minimises, the other entries are
  logged.
* ``predict(batch) -> list[dict]``: one dict per video, ``{"video_id", "segments" (M, 2) in
  seconds, "scores" (M,), "labels" (M,) int64}``, sorted by score. Called under
  ``torch.no_grad()`` in eval mode.

Optional:

* ``convert_state_dict(checkpoint, weights) -> state_dict | None`` (classmethod): the
  detector's weights from a foreign checkpoint (e.g. its authors' public code); ``weights`` is
  ``"ema"`` or ``"raw"``; None when the checkpoint is not one it knows.
* ``"proposals"`` (K, 2) seconds and ``"proposal_scores"`` (K,) in each ``predict`` dict: a
  class-agnostic proposal stage's proposals, best first; the engine writes them into the
  detections JSON and reports their AR@100 and AUC
  (:func:`pytal.evaluation.evaluate_model_detections`).
* ``loss_normalizer``: an object with ``state_dict()`` / ``load_state_dict()``, saved with the
  training state so that a resumed run continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, Protocol, runtime_checkable

import torch

__all__ = ["Detection", "Detector", "ModelConfig"]

#: One video's detections: ``video_id``, ``segments`` (M, 2) seconds, ``scores`` (M,),
#: ``labels`` (M,) int64 class ids.
Detection = dict[str, Any]


@dataclass(frozen=True)
class ModelConfig:
    """Base of a detector's ``model`` section: ``name`` is the registered name."""

    SECTION: ClassVar[str] = "model"

    name: str


@runtime_checkable
class Detector(Protocol):
    """The methods the engine calls (see the module docstring)."""

    config_class: ClassVar[type]

    def forward(self, batch: Any) -> dict[str, torch.Tensor]: ...

    def predict(self, batch: Any) -> list[Detection]: ...

    @classmethod
    def convert_state_dict(cls, checkpoint: Mapping[str, Any], weights: str
                           ) -> Optional[dict[str, torch.Tensor]]: ...

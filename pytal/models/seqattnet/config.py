"""``SeqAttNetConfig``: the ``model.*`` keys of SeqAttNet, their types and defaults.

``pytal.config`` reads the ``model`` section of a config into it (see
``pytal/configs/seqattnet_*.yaml``); the model also reads ``dataset.input_dim``,
``num_classes``, ``max_seq_len`` (T: every video is resized to it) and the ``eval.*`` NMS
settings. Lengths are in steps of the resized feature sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pytal.models.protocol import ModelConfig

__all__ = ["SeqAttNetConfig"]


def _fail(key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"model.{key} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class SeqAttNetConfig(ModelConfig):
    """Every ``model.*`` key of SeqAttNet (defaults: the paper's and BMN's).

    Evaluation module (the paper's Table 1): base_dim, max_duration (D; 0: T), num_samples
    (N points per proposal), samples_per_bin and boundary_ratio (BMN's sampling), hidden_3d,
    hidden_2d. 3D input: amassment_length (T_p; 0: T), amassment_features (``input``: the
    input features, ``base``: the base module's output). Training: label_threshold (theta),
    lambda_reg (lambda_R), lambda_te, lambda_cl, lambda_er, lambda_l2 (lambda_2),
    error_proposals and error_iou (the error estimator's training proposals per video).
    Inference: peak_ratio (boundary candidates), max_candidates (per video, by P),
    classes_per_proposal, max_proposals (the proposal stage's output per video).
    """

    base_dim: int = 256
    max_duration: int = 0
    num_samples: int = 32
    samples_per_bin: int = 3
    boundary_ratio: float = 0.5
    hidden_3d: int = 512
    hidden_2d: int = 128
    amassment_length: int = 0
    amassment_features: Literal["input", "base"] = "input"
    label_threshold: float = 0.5
    lambda_reg: float = 10.0
    lambda_te: float = 1.0
    lambda_cl: float = 1.0
    lambda_er: float = 1.0
    lambda_l2: float = 0.001
    error_proposals: int = 32
    error_iou: float = 0.5
    peak_ratio: float = 0.5
    max_candidates: int = 200
    classes_per_proposal: int = 2
    max_proposals: int = 100

    def __post_init__(self) -> None:
        for key in ("base_dim", "num_samples", "samples_per_bin", "hidden_3d", "hidden_2d",
                    "error_proposals", "max_candidates", "classes_per_proposal",
                    "max_proposals"):
            if getattr(self, key) < 1:
                raise _fail(key, "an integer >= 1", getattr(self, key))
        for key in ("max_duration", "amassment_length"):
            if getattr(self, key) < 0:
                raise _fail(key, "an integer >= 0 (0: dataset.max_seq_len)", getattr(self, key))
        for key in ("boundary_ratio", "lambda_reg", "lambda_te", "lambda_cl", "lambda_er",
                    "lambda_l2"):
            if getattr(self, key) < 0:
                raise _fail(key, "a number >= 0", getattr(self, key))
        for key in ("label_threshold", "error_iou", "peak_ratio"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise _fail(key, "a number in [0, 1]", getattr(self, key))

    def duration_bins(self, temporal_scale: int) -> int:
        """D: the proposal durations of the confidence maps (1 .. D steps)."""
        return self.max_duration or temporal_scale

    def proposal_length(self, temporal_scale: int) -> int:
        """T_p: the time axis of the 3D input."""
        return self.amassment_length or temporal_scale

    def check(self, cfg: Any) -> None:
        """Rules across sections: D <= T = ``dataset.max_seq_len``; T_p covers the longest
        proposal (min(D + 1, T) steps); T >= 4."""
        t = cfg.dataset.max_seq_len
        if t < 4:
            raise ValueError(f"dataset.max_seq_len must be >= 4 for SeqAttNet, got {t}")
        if self.duration_bins(t) > t:
            raise _fail("max_duration", f"<= dataset.max_seq_len ({t})", self.max_duration)
        longest = min(self.duration_bins(t) + 1, t)
        if self.proposal_length(t) < longest:
            raise _fail("amassment_length", f"0 or >= {longest} (the most steps a proposal "
                        "covers: min(max_duration + 1, max_seq_len))", self.amassment_length)

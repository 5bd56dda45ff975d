"""``TALMTSConfig``: the ``model.*`` keys of TAL-MTS, their types and defaults.

Lengths are in frames unless said otherwise. The model reads ``dataset.input_dim``,
``num_classes`` and ``max_seq_len`` and the ``eval.*`` inference settings too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from pytal.models.protocol import ModelConfig

__all__ = ["STREAM_CHANNELS", "TALMTSConfig"]

#: Input channels of each stream's frames: RGB and two-channel optical flow.
STREAM_CHANNELS = {"rgb": 3, "flow": 2}


def _fail(key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"model.{key} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class TALMTSConfig(ModelConfig):
    """Every ``model.*`` key of TAL-MTS (defaults: the paper's THUMOS14 settings).

    Input: backbone (``small3d``, ``i3d`` or ``features``), streams (``rgb`` and/or ``flow``,
    fused late by averaging), frame_size (square frames, pixels), clip_length (frames per
    window), test_overlap (frames shared by neighbouring windows at inference), map_channels
    (channels of the Mixed_4f-like and Mixed_5c-like maps: I3D's 832 and 1024),
    small3d_width, i3d_rgb_weights / i3d_flow_weights (paths) and i3d_random.
    Neck: channels (pyramid width), stt (with stt_dim, stt_heads, stt_layers). Refinement:
    fsa (with fsa_patch, fsa_dim, fsa_heads, fsa_layers), refine_dim. Training: alpha (boundary
    losses), beta (quality loss), focal_alpha, focal_gamma, refine_iou (tIoU for a refined
    positive), cls_prior_prob. Inference: detections (``refined`` per eq. 13 or ``coarse``).
    """

    backbone: Literal["small3d", "i3d", "features"] = "i3d"
    streams: tuple[str, ...] = ("rgb",)
    frame_size: int = 96
    clip_length: int = 256
    test_overlap: int = 128
    map_channels: tuple[int, int] = (832, 1024)
    small3d_width: int = 32
    i3d_rgb_weights: Optional[str] = None
    i3d_flow_weights: Optional[str] = None
    i3d_random: bool = False
    channels: int = 512
    stt: bool = True
    stt_dim: int = 256
    stt_heads: int = 4
    stt_layers: int = 1
    fsa: bool = True
    fsa_patch: int = 24
    fsa_dim: int = 128
    fsa_heads: int = 4
    fsa_layers: int = 1
    refine_dim: int = 128
    alpha: float = 10.0
    beta: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    refine_iou: float = 0.5
    cls_prior_prob: float = 0.01
    detections: Literal["refined", "coarse"] = "refined"

    def __post_init__(self) -> None:
        if not self.streams or any(s not in STREAM_CHANNELS for s in self.streams) \
                or len(set(self.streams)) != len(self.streams):
            raise _fail("streams", "a non-empty list of distinct 'rgb' / 'flow'", self.streams)
        if self.frame_size < 32 or self.frame_size % 32:
            raise _fail("frame_size", "a multiple of 32 (the Mixed_5c map is frame_size / 32)",
                        self.frame_size)
        if self.clip_length < 128 or self.clip_length % 128:
            raise _fail("clip_length", "a multiple of 128 (six levels from clip_length / 4)",
                        self.clip_length)
        if not 0 <= self.test_overlap < self.clip_length or self.test_overlap % 8:
            raise _fail("test_overlap", "a multiple of 8 in [0, clip_length)", self.test_overlap)
        if len(self.map_channels) != 2 or min(self.map_channels) < 1:
            raise _fail("map_channels", "[Mixed_4f channels >= 1, Mixed_5c channels >= 1]",
                        self.map_channels)
        for key in ("channels", "small3d_width", "stt_dim", "fsa_dim", "refine_dim"):
            if getattr(self, key) < 1:
                raise _fail(key, "an integer >= 1", getattr(self, key))
        for dim, heads in (("stt_dim", "stt_heads"), ("fsa_dim", "fsa_heads")):
            if getattr(self, heads) < 1 or getattr(self, dim) % getattr(self, heads):
                raise _fail(heads, f"a divisor of model.{dim}", getattr(self, heads))
        if self.fsa and (self.fsa_patch < 1 or self.frame_size % self.fsa_patch):
            raise _fail("fsa_patch", "a divisor of model.frame_size", self.fsa_patch)
        if self.fsa and self.backbone == "features":
            raise _fail("fsa", "false with backbone 'features' (the FSA module reads frames)",
                        self.fsa)
        if self.backbone == "i3d" and self.map_channels != (832, 1024):
            raise _fail("map_channels", "[832, 1024] with backbone 'i3d'", self.map_channels)
        if not 0 < self.refine_iou < 1:
            raise _fail("refine_iou", "in (0, 1)", self.refine_iou)
        if not 0 < self.cls_prior_prob < 1:
            raise _fail("cls_prior_prob", "in (0, 1)", self.cls_prior_prob)
        if self.alpha < 0 or self.beta < 0:
            raise _fail("alpha" if self.alpha < 0 else "beta", "a number >= 0",
                        min(self.alpha, self.beta))

    @property
    def frames_per_step(self) -> int:
        """Frames per step of ``batch.feats``: 1 for frames, 8 for packed feature maps."""
        return 8 if self.backbone == "features" else 1

    @property
    def map_sizes(self) -> tuple[int, int]:
        """Spatial sizes of the Mixed_4f-like (frame_size / 16) and Mixed_5c-like
        (frame_size / 32) maps."""
        return self.frame_size // 16, self.frame_size // 32

    def input_dim(self) -> int:
        """Channels of ``batch.feats`` this model expects (``dataset.input_dim``)."""
        if self.backbone == "features":
            s4, s5 = self.map_sizes
            c4, c5 = self.map_channels
            return len(self.streams) * (2 * c4 * s4 * s4 + c5 * s5 * s5)
        return sum(STREAM_CHANNELS[s] for s in self.streams) * self.frame_size ** 2

    def check(self, cfg: Any) -> None:
        expected = self.input_dim()
        if cfg.dataset.input_dim != expected:
            raise ValueError(f"dataset.input_dim must be {expected} for model.backbone "
                             f"{self.backbone!r}, streams {list(self.streams)} and frame_size "
                             f"{self.frame_size}, got {cfg.dataset.input_dim}")
        steps = self.clip_length // self.frames_per_step
        if cfg.dataset.max_seq_len > steps:
            raise ValueError(f"dataset.max_seq_len must be <= {steps} (model.clip_length in "
                             f"input steps), got {cfg.dataset.max_seq_len}")

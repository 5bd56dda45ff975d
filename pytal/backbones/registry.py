"""The backbone registry: name -> how to build it, what input it expects, where its weights
come from. :func:`build_backbone` returns a :class:`ClipEncoder` that maps uint8 RGB clips to
feature vectors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from pytal.backbones.weights import RANDOM, file_hash, load_state_dict_file, resolve_weights

__all__ = ["BackboneSpec", "ClipEncoder", "BACKBONES", "register_backbone", "build_backbone",
           "backbone_names"]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: registry name.
        feature_dim: C of the (B, C) features.
        resize: ``(short_side,)`` or ``(height, width)`` in pixels before the centre crop.
        crop: (height, width) of the centre crop (the network's input size).
        mean, std: per-channel normalisation of RGB scaled to [0, 1].
        weights_file: file name of the released weights (looked for in the torch cache).
        weights_source: where those weights are published (said when they are missing).
        build: () -> (network, load): the network, and ``load(network, state_dict)`` that loads
            released weights into it and makes it return (B, feature_dim).
        fixed_frames: frames per clip the network requires (None: any).
        min_crop: smallest crop side the network accepts.
    """

    name: str
    feature_dim: int
    resize: tuple[int, ...]
    crop: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_file: str
    weights_source: str
    build: Callable[[], tuple[nn.Module, Callable[[nn.Module, dict], None]]]
    fixed_frames: Optional[int] = None
    min_crop: int = 1


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    BACKBONES[spec.name] = spec
    return spec


def backbone_names() -> list[str]:
    return sorted(BACKBONES)


class ClipEncoder(nn.Module):
    """A backbone as a clip encoder: uint8 clips (B, T, H, W, 3) RGB -> (B, C) float32 features
    (scaled to [0, 1], normalised with the backbone's mean and std, fed as (B, 3, T, H, W)).

    Attributes: ``spec``, ``weights_id`` (``"random-seed0"`` or the weights file's SHA-256 prefix),
    ``feature_dim``."""

    def __init__(self, spec: BackboneSpec, network: nn.Module, weights_id: str):
        super().__init__()
        self.spec, self.network, self.weights_id = spec, network, weights_id
        self.feature_dim = spec.feature_dim
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1, 1), persistent=False)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"{self.spec.name}: expected uint8 clips (B, T, H, W, 3), got "
                             f"shape {tuple(clips.shape)}")
        frames = self.spec.fixed_frames
        if frames is not None and clips.shape[1] != frames:
            raise ValueError(f"{self.spec.name} takes clips of exactly {frames} frames, got "
                             f"{clips.shape[1]} (set --num-frames {frames})")
        x = clips.permute(0, 4, 1, 2, 3).to(self.mean.dtype).div_(255)
        x = (x - self.mean) / self.std
        return self.network(x).float()


def build_backbone(name: str, weights: Optional[str] = None, *,
                   device: torch.device | str = "cpu") -> ClipEncoder:
    """The backbone ``name`` in eval mode on ``device``.

    ``weights``: a state-dict path, ``"random"`` (seeded, deterministic), or None for the
    released weights in the local torch cache (``spec.weights_file``); missing weights raise
    :class:`~pytal.backbones.weights.WeightsNotFound` saying where to put them."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} (known: {', '.join(backbone_names())})")
    spec = BACKBONES[name]
    path = resolve_weights(name, weights, spec.weights_file, spec.weights_source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network, load = spec.build()
    if path == RANDOM:
        load(network, None)
        weights_id = "random-seed0"
    else:
        load(network, load_state_dict_file(path))
        weights_id = file_hash(path)
    return ClipEncoder(spec, network, weights_id).to(device).eval()

"""Video backbones for feature extraction: a registry of clip encoders (uint8 RGB clips ->
(B, C) features) with their input transforms and weights.

    from pytal.backbones import build_backbone
    encoder = build_backbone("i3d", "rgb_imagenet.pt")       # or "random", or None (torch cache)
    feats = encoder(clips)                                     # (B, T, H, W, 3) uint8 -> (B, 1024)

Registered: ``i3d`` (pytal's Inception-I3D, public ``rgb_imagenet.pt`` layout; the flow stream is
``InceptionI3d(in_channels=2)`` + :func:`load_i3d_state_dict` on ``flow_imagenet.pt``), and
torchvision's ``r2plus1d_18``, ``s3d``, ``swin3d_t``, ``mvit_v2_s`` (torchvision needed).
"""
from pytal.backbones.i3d import InceptionI3d
from pytal.backbones.i3d_weights import load_i3d_state_dict
from pytal.backbones.registry import (BACKBONES, BackboneSpec, ClipEncoder, backbone_names,
                                      build_backbone, register_backbone)
from pytal.backbones.weights import RANDOM, WeightsNotFound, cache_dir
from pytal.backbones import catalog  # noqa: F401  (registers the backbones)

__all__ = ["BACKBONES", "BackboneSpec", "ClipEncoder", "InceptionI3d", "RANDOM", "WeightsNotFound",
           "backbone_names", "build_backbone", "cache_dir", "load_i3d_state_dict",
           "register_backbone"]

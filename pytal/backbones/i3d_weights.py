"""Loading the public Inception-I3D state dicts (``rgb_imagenet.pt``, ``flow_imagenet.pt``)."""
from __future__ import annotations

from typing import Mapping

import torch

from pytal.backbones.i3d import InceptionI3d

__all__ = ["load_i3d_state_dict"]


def load_i3d_state_dict(model: InceptionI3d, state_dict: Mapping[str, torch.Tensor], *,
                        source: str = "state dict") -> None:
    """Copy ``state_dict`` (the public layout: ``Conv3d_1a_7x7.conv3d.weight``,
    ``Mixed_4b.b1b.bn.running_mean``, ..., ``logits.conv3d.bias``) into ``model``.

    Every parameter and running statistic must be present with the model's shape; BatchNorm's
    ``num_batches_tracked`` counters may be absent (older files lack them). Raises ValueError
    naming ``source`` and the first offending key, with the expected shape."""
    own = model.state_dict()
    unexpected = sorted(set(state_dict) - set(own))
    if unexpected:
        raise ValueError(f"{source}: unexpected key {unexpected[0]!r} for Inception-I3D "
                         f"({len(unexpected)} unexpected; is this an I3D state dict?)")
    missing = sorted(k for k in own if k not in state_dict and not k.endswith("num_batches_tracked"))
    if missing:
        raise ValueError(f"{source}: missing key {missing[0]!r} (shape {tuple(own[missing[0]].shape)}"
                         f"; {len(missing)} missing)")
    for key, value in state_dict.items():
        if tuple(value.shape) != tuple(own[key].shape):
            hint = ""
            if key == "Conv3d_1a_7x7.conv3d.weight":
                hint = (f" (input channels {value.shape[1]}: 3 for RGB weights, 2 for flow; the "
                        f"model has {model.in_channels})")
            raise ValueError(f"{source}: {key!r} has shape {tuple(value.shape)}, expected "
                             f"{tuple(own[key].shape)}{hint}")
    model.load_state_dict(dict(state_dict), strict=False)

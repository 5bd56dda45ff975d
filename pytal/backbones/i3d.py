"""Inception-I3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?", 2017) as a clip
feature extractor, with the module names of the widely used PyTorch port, so its public
``rgb_imagenet.pt`` (3 input channels) and ``flow_imagenet.pt`` (2 channels) state dicts load as
they are.

Every convolution and max-pool pads "same" as TensorFlow does (computed from the input size, the
extra pixel at the end), so the released weights see the inputs they were trained with.
Inputs: RGB scaled to [-1, 1]; flow (x, y) clipped and scaled to [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InceptionI3d", "INCEPTION_CHANNELS"]

#: Output channels of each inception block: (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj).
INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def _same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]
                  ) -> tuple[int, ...]:
    """F.pad amounts (last dim first) for TensorFlow's "same" padding of a (T, H, W) input."""
    pads = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max(k - (s if n % s == 0 else n % s), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class SamePadMaxPool3d(nn.Module):
    """3-D max pooling with "same" padding (zeros: inputs are post-ReLU, so >= 0)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_padding(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3d(nn.Module):
    """Conv3d ("same" padding, no bias) + BatchNorm3d (eps 1e-3) + ReLU; parameters under
    ``conv3d`` and ``bn``. ``logits=True``: a biased conv alone (the classifier layer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 *, logits: bool = False):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=logits)
        self.bn = None if logits else nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, _same_padding(x.shape[2:], self.kernel, self.stride)))
        if self.bn is None:
            return x
        return F.relu(self.bn(x))


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; max-pool -> 1x1), concatenated
    on channels."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        self.b0 = Unit3d(in_channels, c0)
        self.b1a = Unit3d(in_channels, c1a)
        self.b1b = Unit3d(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3d(in_channels, c2a)
        self.b2b = Unit3d(c2a, c2b, (3, 3, 3))
        self.b3a = SamePadMaxPool3d((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3d(in_channels, c3)
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Inception-I3D up to ``Mixed_5c`` (1024 channels), plus the ``logits`` layer of the
    released weights (kept so their state dicts load strictly; :meth:`forward` does not use it).

    ``in_channels``: 3 for RGB, 2 for optical flow. :meth:`forward` maps clips (B, in_channels,
    T, H, W) to (B, 1024) features: the average of the ``Mixed_5c`` map over time and space
    (what the released feature extractors' 2x7x7 average pool gives for 16-frame 224x224 clips).
    """

    feature_dim = 1024

    def __init__(self, in_channels: int = 3, num_classes: int = 400):
        super().__init__()
        self.in_channels = in_channels
        self.Conv3d_1a_7x7 = Unit3d(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3d(64, 64)
        self.Conv3d_2c_3x3 = Unit3d(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in ("Mixed_3b", "Mixed_3c"):
            channels = self._add_block(name, channels)
        self.MaxPool3d_4a_3x3 = SamePadMaxPool3d((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            channels = self._add_block(name, channels)
        self.MaxPool3d_5a_2x2 = SamePadMaxPool3d((2, 2, 2), (2, 2, 2))
        for name in ("Mixed_5b", "Mixed_5c"):
            channels = self._add_block(name, channels)
        self.logits = Unit3d(channels, num_classes, logits=True)

    def _add_block(self, name: str, in_channels: int) -> int:
        block = InceptionBlock(in_channels, INCEPTION_CHANNELS[name])
        self.add_module(name, block)
        return block.out_channels

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, T, H, W) -> the ``Mixed_5c`` map (B, 1024, ~T/8, ~H/32, ~W/32)."""
        return self.mixed_maps(x)[1]

    def mixed_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, in_channels, T, H, W) -> the ``Mixed_4f`` map (B, 832, ~T/4, ~H/16, ~W/16) and
        the ``Mixed_5c`` map (B, 1024, ~T/8, ~H/32, ~W/32)."""
        m4 = None
        for name, module in self.named_children():
            if name != "logits":
                x = module(x)
                if name == "Mixed_4f":
                    m4 = x
        return m4, x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3, 4))

"""Layers shared by pytal's detectors, all on (B, C, T) sequences with (B, 1, T) bool masks."""
from pytal.nn.drop import AffineDropPath, drop_path
from pytal.nn.float32 import Float32Conv1d, Float32Conv2d, Float32Linear
from pytal.nn.gmg_block import GMGBlock
from pytal.nn.masked_conv import MaskedConv1D, downsample_mask, valid_extent
from pytal.nn.norm import ChannelLayerNorm
from pytal.nn.pointwise import PointwiseConv1d, pointwise_conv1d
from pytal.nn.scale import Scale

__all__ = ["AffineDropPath", "ChannelLayerNorm", "Float32Conv1d", "Float32Conv2d", "Float32Linear",
           "GMGBlock", "MaskedConv1D", "PointwiseConv1d",
           "Scale", "downsample_mask", "drop_path", "pointwise_conv1d",
           "valid_extent"]

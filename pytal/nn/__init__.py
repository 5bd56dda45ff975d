"""Layers shared by pytal's detectors."""
from pytal.nn.drop import AffineDropPath, drop_path
from pytal.nn.gmg_block import GMGBlock
from pytal.nn.norm import ChannelLayerNorm

__all__ = ["AffineDropPath", "ChannelLayerNorm", "GMGBlock", "drop_path"]

"""``CLTDRGMGConfig``: the ``model.*`` keys of CLTDR-GMG, their types and defaults.

``pytal.config`` reads the ``model`` section of a config into it (see
``pytal/configs/cltdr_gmg_*.yaml``); the model also reads ``dataset.input_dim``,
``num_classes``, ``max_seq_len`` and the ``eval.*`` inference settings. Lengths and regression
ranges are in input feature steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from pytal.models.protocol import ModelConfig

__all__ = ["CLTDRGMGConfig"]


def _fail(key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"model.{key} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class CLTDRGMGConfig(ModelConfig):
    """Every ``model.*`` key of CLTDR-GMG (defaults: the public code's).

    Encoder: backbone_arch ``[projection convs, stem GMG blocks, branch GMG blocks]`` (levels =
    branch blocks + 1), scale_factor, downsample_type, embd_* (projection convs), gmg_* (GMG
    blocks; ``gmg_mlp_dim`` None: 4 x embd_dim), input_noise (training noise std),
    use_abs_pe, droppath. Neck: fpn_dim (= embd_dim), fpn_with_ln. Heads: head_*,
    boundary_kernel_size, refine_offset_kernel_size, num_bins (Trident K = num_bins + 1),
    regression_range (one [lo, hi] per level, feature steps), cls_prior_prob, head_empty_cls.
    Training: cls_loss, reg_loss, iou_weight_power, refined_loss_weight, center_sample,
    center_sample_radius (strides), init_loss_norm, loss_norm_momentum, loss_weight (of the
    regression loss), label_smoothing. Accepted and unused, as in the public code: gmg_k,
    max_buffer_len_factor, dropout. Inference: inference_padding (``max_seq_len``: pad every
    video to ``dataset.max_seq_len`` as the public code does; ``stride``: only to the pyramid's
    stride multiple, faster, different outputs).
    """

    backbone_arch: tuple[int, int, int]
    regression_range: tuple[tuple[float, float], ...]
    embd_dim: int
    head_dim: int
    variant: Literal["paper", "release"] = "paper"
    scale_factor: int = 2
    downsample_type: Literal["max", "avg"] = "max"
    embd_kernel_size: int = 3
    embd_with_ln: bool = True
    gmg_kernel_size: int = 1
    gmg_mlp_dim: Optional[int] = None
    gmg_init_conv_vars: float = 0.0
    gmg_k: float = 5.0
    input_noise: float = 0.0
    use_abs_pe: bool = False
    droppath: float = 0.1
    dropout: float = 0.0
    fpn_dim: Optional[int] = None
    fpn_with_ln: bool = True
    head_num_layers: int = 3
    head_kernel_size: int = 3
    boundary_kernel_size: int = 3
    head_with_ln: bool = True
    refine_offset_kernel_size: int = 7
    num_bins: int = 16
    max_buffer_len_factor: float = 6.0
    cls_prior_prob: float = 0.01
    head_empty_cls: tuple[int, ...] = ()
    cls_loss: Literal["varifocal", "focal"] = "varifocal"
    reg_loss: Literal["diou", "giou"] = "diou"
    iou_weight_power: float = 0.2
    refined_loss_weight: float = 0.7
    center_sample: Literal["radius", "none"] = "radius"
    center_sample_radius: float = 1.5
    init_loss_norm: float = 100.0
    loss_norm_momentum: float = 0.9
    loss_weight: float = 1.0
    label_smoothing: float = 0.0
    inference_padding: Literal["max_seq_len", "stride"] = "max_seq_len"

    def __post_init__(self) -> None:
        arch = self.backbone_arch
        if any(a < 0 for a in arch) or arch[0] < 1:
            raise _fail("backbone_arch", "[#projection convs >= 1, #stem blocks, #branch "
                        "blocks] (non-negative integers)", list(arch))
        if (len(self.regression_range) != self.num_levels
                or any(not lo <= hi for lo, hi in self.regression_range)):
            raise _fail("regression_range", f"{self.num_levels} [lo, hi] pairs with lo <= hi "
                        "(one per pyramid level: backbone_arch[2] + 1)",
                        [list(r) for r in self.regression_range])
        if self.embd_dim < 16 or self.embd_dim % 16:
            raise _fail("embd_dim", "an integer >= 16 divisible by 16 (the GMG blocks' "
                        "GroupNorm groups)", self.embd_dim)
        if self.fpn_dim is not None and self.fpn_dim != self.embd_dim:
            raise _fail("fpn_dim", f"equal to model.embd_dim ({self.embd_dim}) or null: the "
                        "neck is the identity with a LayerNorm per level", self.fpn_dim)
        for key in ("head_dim", "head_num_layers"):
            if getattr(self, key) < 1:
                raise _fail(key, "an integer >= 1", getattr(self, key))
        if self.gmg_mlp_dim is not None and self.gmg_mlp_dim < 1:
            raise _fail("gmg_mlp_dim", "an integer >= 1 or null", self.gmg_mlp_dim)
        if self.scale_factor < 2:
            raise _fail("scale_factor", "an integer >= 2", self.scale_factor)
        if self.num_bins < 0:
            raise _fail("num_bins", "an integer >= 0", self.num_bins)
        for key in ("embd_kernel_size", "gmg_kernel_size", "head_kernel_size",
                    "boundary_kernel_size", "refine_offset_kernel_size"):
            if getattr(self, key) < 1 or getattr(self, key) % 2 != 1:
                raise _fail(key, "an odd kernel size", getattr(self, key))
        for key in ("gmg_init_conv_vars", "input_noise", "iou_weight_power", "label_smoothing"):
            if getattr(self, key) < 0:
                raise _fail(key, "a number >= 0", getattr(self, key))
        for key in ("droppath", "refined_loss_weight", "label_smoothing"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise _fail(key, "a number in [0, 1]", getattr(self, key))
        if not 0.0 < self.cls_prior_prob < 1.0:
            raise _fail("cls_prior_prob", "a number in (0, 1)", self.cls_prior_prob)
        for key in ("center_sample_radius", "init_loss_norm"):
            if not getattr(self, key) > 0:
                raise _fail(key, "a number > 0", getattr(self, key))
        if not 0.0 <= self.loss_norm_momentum < 1.0:
            raise _fail("loss_norm_momentum", "a number in [0, 1)", self.loss_norm_momentum)

    @property
    def num_levels(self) -> int:
        return self.backbone_arch[2] + 1

    @property
    def mlp_dim(self) -> int:
        """``gmg_mlp_dim``, or 4 x ``embd_dim`` when it is null."""
        return self.gmg_mlp_dim if self.gmg_mlp_dim is not None else 4 * self.embd_dim

    def check(self, cfg: Any) -> None:
        """Rules across sections: ``dataset.max_seq_len`` is a multiple of the total pyramid
        stride; ``head_empty_cls`` are class ids of ``dataset.num_classes``."""
        total_stride = self.scale_factor ** (self.num_levels - 1)
        if cfg.dataset.max_seq_len % total_stride:
            raise ValueError(f"dataset.max_seq_len must be a multiple of the total pyramid stride "
                             f"{total_stride} (model.scale_factor ** backbone_arch[2]), got "
                             f"{cfg.dataset.max_seq_len!r}")
        if any(not 0 <= c < cfg.dataset.num_classes for c in self.head_empty_cls):
            raise _fail("head_empty_cls", f"a list of class ids in [0, {cfg.dataset.num_classes})",
                        list(self.head_empty_cls))

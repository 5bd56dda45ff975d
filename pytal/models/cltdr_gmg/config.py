"""The config keys CLTDR-GMG reads, validated once, with errors naming the key.

``CLTDRGMGConfig.from_dict(cfg)`` takes the whole config dict (sections ``model``, ``dataset``,
``train``, ``test``; see ``pytal/configs/cltdr_gmg_*.yaml``). Lengths and regression ranges are
in input feature steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pytal.models.cltdr_gmg.refinement import VARIANTS

__all__ = ["CLTDRGMGConfig"]

NMS_METHODS = {"soft": "gaussian", "linear": "linear", "hard": "hard", "none": None}


class _Section:
    """Typed reads of one config section; every error names ``section.key``."""

    def __init__(self, cfg: Mapping[str, Any], section: str) -> None:
        value = cfg.get(section)
        if not isinstance(value, Mapping):
            raise KeyError(f"config: missing section {section!r}")
        self.name, self.data = section, value

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise KeyError(f"config: missing key {self.name}.{key}")
        return default

    def _fail(self, key: str, expected: str, value: Any) -> ValueError:
        return ValueError(f"config: {self.name}.{key} must be {expected}, got {value!r}")

    def int(self, key: str, default: Any = None, *, min: int | None = None) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or (min is not None and v < min):
            raise self._fail(key, "an integer" + (f" >= {min}" if min is not None else ""), v)
        return v

    def float(self, key: str, default: Any = None, *, min: float | None = None,
              max: float | None = None, min_open: bool = False) -> float:
        v = self._get(key, default)
        bad = isinstance(v, bool) or not isinstance(v, (int, float))
        if not bad and min is not None:
            bad = v <= min if min_open else v < min
        if not bad and max is not None:
            bad = v > max
        if bad:
            lo = "" if min is None else (f" > {min}" if min_open else f" >= {min}")
            hi = "" if max is None else f" <= {max}"
            raise self._fail(key, "a number" + (lo + (" and" if lo and hi else "") + hi), v)
        return float(v)

    def bool(self, key: str, default: Any = None) -> bool:
        v = self._get(key, default)
        if not isinstance(v, bool):
            raise self._fail(key, "true or false", v)
        return v

    def choice(self, key: str, choices, default: Any = None) -> Any:
        v = self._get(key, default)
        if v not in choices:
            raise self._fail(key, f"one of {list(choices)}", v)
        return v

    def odd(self, key: str, default: Any = None) -> int:
        v = self.int(key, default, min=1)
        if v % 2 != 1:
            raise self._fail(key, "an odd kernel size", v)
        return v

    def raw(self, key: str, default: Any = None) -> Any:
        return self._get(key, default)


_REQUIRED = object()


@dataclass(frozen=True)
class CLTDRGMGConfig:
    """Everything the model reads from the config (defaults: the public code's)."""

    variant: str
    input_dim: int
    num_classes: int
    max_seq_len: int
    # encoder
    backbone_arch: tuple[int, int, int]
    scale_factor: int
    downsample_type: str
    embd_dim: int
    embd_kernel_size: int
    embd_with_ln: bool
    gmg_kernel_size: int
    gmg_mlp_dim: int
    gmg_init_conv_vars: float
    input_noise: float
    use_abs_pe: bool
    droppath: float
    # neck and heads
    fpn_with_ln: bool
    head_dim: int
    head_num_layers: int
    head_kernel_size: int
    boundary_kernel_size: int
    head_with_ln: bool
    refine_offset_kernel_size: int
    num_bins: int
    regression_range: tuple[tuple[float, float], ...]
    cls_prior_prob: float
    head_empty_cls: tuple[int, ...]
    # training
    cls_loss: str
    reg_loss: str
    iou_weight_power: float
    refined_loss_weight: float
    center_sample: str
    center_sample_radius: float
    init_loss_norm: float
    loss_norm_momentum: float
    loss_weight: float
    label_smoothing: float
    # inference (test.*)
    pre_nms_thresh: float
    pre_nms_topk: int
    iou_threshold: float
    min_score: float
    max_seg_num: int
    nms_method: str
    nms_sigma: float
    duration_thresh: float
    multiclass_nms: bool
    voting_thresh: float

    #: Keys of the public code's configs that are accepted and have no effect (see the
    #: package docstring); ``pytal.config`` treats them as known.
    ACCEPTED_UNUSED = {"model": ("gmg_k", "max_buffer_len_factor"), "train": ("dropout",)}

    @property
    def num_levels(self) -> int:
        return self.backbone_arch[2] + 1

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "CLTDRGMGConfig":
        if not isinstance(cfg, Mapping):
            raise TypeError(f"config: expected a dict, got {type(cfg).__name__}")
        m, d = _Section(cfg, "model"), _Section(cfg, "dataset")
        t = _Section(cfg, "train") if "train" in cfg else _Section({"train": {}}, "train")
        s = _Section(cfg, "test") if "test" in cfg else _Section({"test": {}}, "test")
        R = _REQUIRED

        arch = m.raw("backbone_arch", R)
        if (not isinstance(arch, (list, tuple)) or len(arch) != 3
                or any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in arch)
                or arch[0] < 1):
            raise m._fail("backbone_arch", "[#projection convs >= 1, #stem blocks, #branch "
                          "blocks] (non-negative integers)", arch)
        num_levels = arch[2] + 1
        ranges = m.raw("regression_range", R)
        if (not isinstance(ranges, (list, tuple)) or len(ranges) != num_levels
                or any(not isinstance(r, (list, tuple)) or len(r) != 2 or not r[0] <= r[1]
                       for r in ranges)):
            raise m._fail("regression_range", f"{num_levels} [lo, hi] pairs with lo <= hi (one "
                          f"per pyramid level: backbone_arch[2] + 1)", ranges)
        embd_dim = m.int("embd_dim", R, min=16)
        if embd_dim % 16:
            raise m._fail("embd_dim", "divisible by 16 (the GMG blocks' GroupNorm groups)",
                          embd_dim)
        fpn_dim = m.int("fpn_dim", embd_dim, min=1)
        if fpn_dim != embd_dim:
            raise m._fail("fpn_dim", f"equal to model.embd_dim ({embd_dim}): the neck is the "
                          "identity with a LayerNorm per level", fpn_dim)
        num_classes = d.int("num_classes", R, min=1)
        empty = t.raw("head_empty_cls", [])
        if (not isinstance(empty, (list, tuple))
                or any(not isinstance(c, int) or not 0 <= c < num_classes for c in empty)):
            raise t._fail("head_empty_cls", f"a list of class ids in [0, {num_classes})", empty)
        scale_factor = m.int("scale_factor", 2, min=2)
        max_seq_len = d.int("max_seq_len", R, min=1)
        total_stride = scale_factor ** (num_levels - 1)
        if max_seq_len % total_stride:
            raise d._fail("max_seq_len", f"a multiple of the total pyramid stride "
                          f"{total_stride} (model.scale_factor ** backbone_arch[2])", max_seq_len)
        return cls(
            variant=m.choice("variant", VARIANTS, "paper"),
            input_dim=d.int("input_dim", R, min=1),
            num_classes=num_classes,
            max_seq_len=max_seq_len,
            backbone_arch=tuple(arch),
            scale_factor=scale_factor,
            downsample_type=m.choice("downsample_type", ("max", "avg"), "max"),
            embd_dim=embd_dim,
            embd_kernel_size=m.odd("embd_kernel_size", 3),
            embd_with_ln=m.bool("embd_with_ln", True),
            gmg_kernel_size=m.odd("gmg_kernel_size", 1),
            gmg_mlp_dim=m.int("gmg_mlp_dim", 4 * embd_dim, min=1),
            gmg_init_conv_vars=m.float("gmg_init_conv_vars", 0.0, min=0.0),
            input_noise=m.float("input_noise", 0.0, min=0.0),
            use_abs_pe=m.bool("use_abs_pe", False),
            droppath=t.float("droppath", 0.1, min=0.0, max=1.0),
            fpn_with_ln=m.bool("fpn_with_ln", True),
            head_dim=m.int("head_dim", R, min=1),
            head_num_layers=m.int("head_num_layers", 3, min=1),
            head_kernel_size=m.odd("head_kernel_size", 3),
            boundary_kernel_size=m.odd("boundary_kernel_size", 3),
            head_with_ln=m.bool("head_with_ln", True),
            refine_offset_kernel_size=m.odd("refine_offset_kernel_size", 7),
            num_bins=m.int("num_bins", 16, min=0),
            regression_range=tuple((float(lo), float(hi)) for lo, hi in ranges),
            cls_prior_prob=t.float("cls_prior_prob", 0.01, min=0.0, max=1.0, min_open=True),
            head_empty_cls=tuple(empty),
            cls_loss=m.choice("cls_loss", ("varifocal", "focal"), "varifocal"),
            reg_loss=m.choice("reg_loss", ("diou", "giou"), "diou"),
            iou_weight_power=m.float("iou_weight_power", 0.2, min=0.0),
            refined_loss_weight=m.float("refined_loss_weight", 0.7, min=0.0, max=1.0),
            center_sample=t.choice("center_sample", ("radius", "none"), "radius"),
            center_sample_radius=t.float("center_sample_radius", 1.5, min=0.0, min_open=True),
            init_loss_norm=t.float("init_loss_norm", 100.0, min=0.0, min_open=True),
            loss_norm_momentum=t.float("loss_norm_momentum", 0.9, min=0.0, max=0.999999),
            loss_weight=t.float("loss_weight", 1.0),
            label_smoothing=t.float("label_smoothing", 0.0, min=0.0, max=1.0),
            pre_nms_thresh=s.float("pre_nms_thresh", 0.001, min=0.0, max=1.0),
            pre_nms_topk=s.int("pre_nms_topk", 2000, min=1),
            iou_threshold=s.float("iou_threshold", 0.1, min=0.0, max=1.0),
            min_score=s.float("min_score", 0.001, min=0.0),
            max_seg_num=s.int("max_seg_num", 200, min=1),
            nms_method=s.choice("nms_method", tuple(NMS_METHODS), "soft"),
            nms_sigma=s.float("nms_sigma", 0.5, min=0.0, min_open=True),
            duration_thresh=s.float("duration_thresh", 0.05, min=0.0),
            multiclass_nms=s.bool("multiclass_nms", True),
            voting_thresh=s.float("voting_thresh", 0.0, min=0.0, max=1.0),
        )
